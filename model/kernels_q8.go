package model

// Q8_0 kernels in plain Go.

// dotQ8 returns the dot product of a Q8_0 weight row and a Q8_0 activation:
// the row's values are wq[0:len(xq)], the first at flat index off of its
// tensor, so value i is in weight group (off+i)/gs and activation group i/gs.
// Products are summed in int32 over each run of indices whose two groups stay
// the same, and each run adds float(sum) * weight scale * activation scale to
// a float32 total in index order. When gs divides the row length this is
// runq.c's matmul exactly; when it does not (export.py writes such files,
// e.g. for hidden_dim 172 with gs 64) runq.c drops each row's tail, and this
// computes it.
func dotQ8(wq []int8, ws []float32, off, gs int, xq []int8, xs []float32) float32 {
	n := len(xq)
	wq = wq[:n]
	var total float32
	for j := 0; j < n; {
		wg, xg := (off+j)/gs, j/gs
		end := min(n, (wg+1)*gs-off, (xg+1)*gs)
		var sum int32
		for k := j; k < end; k++ {
			sum += int32(wq[k]) * int32(xq[k])
		}
		total += float32(sum) * ws[wg] * xs[xg]
		j = end
	}
	return total
}

// matVecQ8 sets out[r] = dotQ8 of row r of a Q8_0 tensor with n = len(xq)
// columns, for rows starting at flat index off: out[r] uses
// wq[off+r*n : off+(r+1)*n] and the tensor's scales ws.
func matVecQ8(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32) {
	n := len(xq)
	for r := range out {
		o := off + r*n
		out[r] = dotQ8(wq[o:o+n], ws, o, gs, xq, xs)
	}
}
