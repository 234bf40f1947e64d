package model

// Q8_0 kernels.
//
// As for the float32 kernels (kernels.go), there are three forms:
//
//   - matVecQ8, the dispatching function tensor.mulRows calls. It runs the
//     fastest implementation for this CPU (kernels_q8_amd64.go: AVX-512 VNNI,
//     else AVX2, else Go; kernels_q8_generic.go elsewhere).
//   - the plain reference loops dotQ8 and matVecQ8Generic, which define the
//     result.
//   - matVecQ8Go, a faster pure-Go twin.
//
// The fast implementations only handle the aligned case, where every group
// lies inside one row (n%gs == 0 and off%gs == 0: all stories shapes with gs
// 32 or 64); any other shape runs the plain loop. They compute exactly the
// same float32 values as the plain loop, bit for bit: the int32 group sums
// are exact in any order, and each row's total is still accumulated group
// by group, in order, with the same roundings (float(sum) * ws, then * xs,
// then + total; separate multiplies and add, no FMA). The tests compare
// with ==. (Summing in another order would be allowed, within 1e-5 of the
// sum of |terms|; keeping the order costs little because the horizontal
// sums are needed per group anyway, and it keeps the goldens and the Q8
// logits of every implementation identical.)

// dotQ8 returns the dot product of a Q8_0 weight row and a Q8_0 activation:
// the row's values are wq[0:len(xq)], the first at flat index off of its
// tensor, so value i is in weight group (off+i)/gs and activation group i/gs.
// Products are summed in int32 over each run of indices whose two groups stay
// the same, and each run adds float(sum) * weight scale * activation scale to
// a float32 total in index order. When gs divides the row length this is
// runq.c's matmul exactly; when it does not (export.py writes such files,
// e.g. for hidden_dim 172 with gs 64) runq.c drops each row's tail, and this
// computes it.
//
// The explicit float32 conversions round after each operation: they forbid
// the compiler from fusing the multiply and add (Go may fuse x*y + z, and
// does on arm64 or with GOAMD64=v3), so the result is the same everywhere.
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
		total += float32(float32(float32(sum)*ws[wg]) * xs[xg])
		j = end
	}
	return total
}

// matVecQ8Generic sets out[r] = dotQ8 of row r of a Q8_0 tensor with
// n = len(xq) columns, for rows starting at flat index off: out[r] uses
// wq[off+r*n : off+(r+1)*n] and the tensor's scales ws.
func matVecQ8Generic(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32) {
	n := len(xq)
	for r := range out {
		o := off + r*n
		out[r] = dotQ8(wq[o:o+n], ws, o, gs, xq, xs)
	}
}

// q8Aligned reports whether a product takes the fast path: every group of
// the rows lies inside one row, at the same columns as the activation's.
func q8Aligned(n, off, gs int) bool {
	return gs > 0 && n > 0 && n%gs == 0 && off%gs == 0
}

// q8Rows returns the rows' weights, their scales and the activation scales,
// resliced to exactly what an aligned product of len(out) rows reads (this
// also checks the lengths, panicking as the plain loop would).
func q8Rows(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32) ([]int8, []float32, []float32) {
	end := off + len(out)*len(xq)
	return wq[off:end], ws[off/gs : end/gs], xs[:len(xq)/gs]
}

// matVecQ8Go is matVecQ8 in pure Go: the plain loop for unaligned shapes,
// else dotQ8Aligned per row.
func matVecQ8Go(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32) {
	n := len(xq)
	if !q8Aligned(n, off, gs) {
		matVecQ8Generic(out, wq, ws, off, gs, xq, xs)
		return
	}
	w, s, xs := q8Rows(out, wq, ws, off, gs, xq, xs)
	ng := n / gs
	for r := range out {
		out[r] = dotQ8Aligned(w[r*n:(r+1)*n], s[r*ng:(r+1)*ng], gs, xq, xs)
	}
}

// dotQ8Aligned is dotQ8 for a row whose groups start at its column 0: w and
// x hold len(xs) groups of gs values, w's scales are ws. Four independent
// int32 partial sums let the additions overlap (int32 addition is
// associative, so the group sums are the same).
func dotQ8Aligned(w []int8, ws []float32, gs int, x []int8, xs []float32) float32 {
	ws = ws[:len(xs)]
	var total float32
	for g := range xs {
		wg := w[g*gs : (g+1)*gs : (g+1)*gs]
		xg := x[g*gs : (g+1)*gs : (g+1)*gs]
		var s0, s1, s2, s3 int32
		k := 0
		for ; k+4 <= len(xg); k += 4 {
			w4, x4 := wg[k:k+4:k+4], xg[k:k+4:k+4]
			s0 += int32(w4[0]) * int32(x4[0])
			s1 += int32(w4[1]) * int32(x4[1])
			s2 += int32(w4[2]) * int32(x4[2])
			s3 += int32(w4[3]) * int32(x4[3])
		}
		for ; k < len(xg); k++ {
			s0 += int32(wg[k]) * int32(xg[k])
		}
		sum := s0 + s1 + s2 + s3
		total += float32(float32(float32(sum)*ws[g]) * xs[g])
	}
	return total
}

// q8Impl is one implementation of matVecQ8, for tests and benchmarks.
type q8Impl struct {
	name   string
	matVec func(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32)
}

// q8Impls returns every implementation usable on this machine, fastest
// first (the first is the one matVecQ8 runs).
func q8Impls() []q8Impl {
	return append(archQ8Impls(), q8Impl{"go", matVecQ8Go})
}
