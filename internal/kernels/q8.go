package kernels

import "math"

// Q8_0 kernels.
//
// As for the float32 kernels (f32.go), there are three forms:
//
//   - MatVecQ8, the dispatching function tensor.mulRows calls. It runs the
//     fastest implementation for this CPU (q8_amd64.go: AVX-512 VNNI,
//     else AVX2, else Go; q8_arm64.go: SDOT, else SMULL/SADALP;
//     q8_generic.go elsewhere).
//   - the plain reference loops dotQ8 and matVecQ8Generic, which define the
//     result.
//   - matVecQ8Go, a faster pure-Go twin.
//
// Batched prompts (tensor.mulBatch) also try mulBatchQ8Tiles first, the
// VNNI tile kernels of q8_amd64.go (none elsewhere), which give the
// same values.
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

// matVecQ8Go is MatVecQ8 in pure Go: the plain loop for unaligned shapes,
// else dotQ8Aligned2 on pairs of rows and dotQ8Aligned on the rest.
func matVecQ8Go(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32) {
	n := len(xq)
	if !q8Aligned(n, off, gs) {
		matVecQ8Generic(out, wq, ws, off, gs, xq, xs)
		return
	}
	w, s, xs := q8Rows(out, wq, ws, off, gs, xq, xs)
	ng := n / gs
	r := 0
	for ; r+2 <= len(out); r += 2 {
		dotQ8Aligned2((*[2]float32)(out[r:r+2]), w[r*n:(r+2)*n], s[r*ng:(r+2)*ng], gs, xq, xs)
	}
	for ; r < len(out); r++ {
		out[r] = dotQ8Aligned(w[r*n:(r+1)*n], s[r*ng:(r+1)*ng], gs, xq, xs)
	}
}

// dotQ8Aligned is dotQ8 for a row whose groups start at its column 0: w and
// x hold len(xs) groups of gs values, w's scales are ws.
func dotQ8Aligned(w []int8, ws []float32, gs int, x []int8, xs []float32) float32 {
	ws = ws[:len(xs)]
	var total float32
	for g := range xs {
		xg := x[g*gs : (g+1)*gs]
		wg := w[g*gs:][:len(xg)]
		var sum int32
		for k, xv := range xg {
			sum += int32(wg[k]) * int32(xv)
		}
		total += float32(float32(float32(sum)*ws[g]) * xs[g])
	}
	return total
}

// dotQ8Aligned2 is dotQ8Aligned for 2 consecutive rows (w holds them, ws
// their scales), sharing each load of x and overlapping two int32 sums per
// group. (Four rows would not fit the registers.)
func dotQ8Aligned2(out *[2]float32, w []int8, ws []float32, gs int, x []int8, xs []float32) {
	n, ng := len(x), len(xs)
	w0, w1 := w[:n], w[n:2*n]
	s0, s1 := ws[:ng], ws[ng:2*ng]
	var t0, t1 float32
	for g, xsg := range xs {
		lo := g * gs
		xg := x[lo : lo+gs]
		a, b := w0[lo:][:len(xg)], w1[lo:][:len(xg)]
		var u0, u1 int32
		for k, xv := range xg {
			xk := int32(xv)
			u0 += int32(a[k]) * xk
			u1 += int32(b[k]) * xk
		}
		t0 += float32(float32(float32(u0)*s0[g]) * xsg)
		t1 += float32(float32(float32(u1)*s1[g]) * xsg)
	}
	out[0], out[1] = t0, t1
}

// q8Impl is one implementation of MatVecQ8, for tests and benchmarks.
type q8Impl struct {
	name   string
	MatVec func(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32)
}

// q8Impls returns every implementation usable on this machine, fastest
// first (the first is the one MatVecQ8 runs).
func q8Impls() []q8Impl {
	return append(archQ8Impls(), q8Impl{"go", matVecQ8Go})
}

// QuantizeActivation is QuantizeQ8(q, s, x, gs, RoundHalfAwayFromZero) with
// the same result bit for bit, by quantizeGroups. It runs once per product
// input on one thread before the parallel dispatch, so it shows in the
// per-token time (profiles showed the pure-Go loop at 3-5% of it); the
// AVX-512 kernel is 18-30x as fast (quantize_amd64.go). An x with
// a NaN or an infinity (a model gone wrong) is handed to QuantizeQ8 whole.
func QuantizeActivation(q []int8, s []float32, x []float32, gs int) {
	if !quantizeGroups(q, s, nil, x, gs) {
		QuantizeQ8(q, s, x, gs, RoundHalfAwayFromZero)
	}
}

// quantizeGroups quantizes x in groups of gs values (the last one may be
// shorter) as QuantizeQ8 does with C's rounding, when every value of x is
// finite:
//
//	for g := 0; g*gs < len(x); g++ {
//		group := x[g*gs : min((g+1)*gs, len(x))]
//		s[g] = max|group| / 127
//		q[g*gs+i] = round(group[i] / s[g]) // 0 if s[g] == 0
//	}
//	if len(sums) > 0 {
//		blockSums(sums, q[:len(x)])
//	}
//	return true
//
// If some value is not finite it returns false, and q, s and sums hold
// partial results. sums are only computed for gs and len(x) multiples of
// QBlock. Dispatch: AVX-512 (quantize_amd64.go), else the Go twin
// quantizeGroupsGo; the tests hold every implementation to QuantizeQ8 and
// blockSums bit for bit.
func quantizeGroups(q []int8, s []float32, sums []int32, x []float32, gs int) bool {
	if gs <= 0 || len(q) < len(x) || len(s) < (len(x)+gs-1)/gs {
		panic("kernels: quantizeGroups: gs <= 0, or q or s too short")
	}
	if len(sums) > 0 && (gs%QBlock != 0 || len(x)%QBlock != 0 || len(sums) < len(x)/QBlock) {
		panic("kernels: quantizeGroups: sums need gs and len(x) multiples of 32, and len(x)/32 of them")
	}
	return quantizeGroupsImpl(q, s, sums, x, gs)
}

// quantizeGroupsGo is quantizeGroups in pure Go, about 3x as fast as
// QuantizeQ8: the rounding is inlined instead of called through a function
// value, and branch-free (roundDiv), and the maximum tests finiteness on the
// way (maxAbs).
func quantizeGroupsGo(q []int8, s []float32, sums []int32, x []float32, gs int) bool {
	for g := 0; g*gs < len(x); g++ {
		group := x[g*gs : min((g+1)*gs, len(x))]
		out := q[g*gs:][:len(group)]
		wmax, finite := maxAbs(group)
		if !finite {
			return false
		}
		scale := wmax / 127
		s[g] = scale
		if scale == 0 {
			clear(out)
			continue
		}
		roundDiv(out, group, scale)
	}
	if len(sums) > 0 {
		blockSums(sums, q[:len(x)])
	}
	return true
}

// quantizeImpl is one implementation of quantizeGroups, for tests and
// benchmarks.
type quantizeImpl struct {
	name     string
	quantize func(q []int8, s []float32, sums []int32, x []float32, gs int) bool
}

// quantizeImpls returns every implementation usable on this machine,
// fastest first (the first is the one quantizeGroups runs).
func quantizeImpls() []quantizeImpl {
	return append(archQuantizeImpls(), quantizeImpl{"go", quantizeGroupsGo})
}

// maxAbs returns the largest |v| of x and whether all of x is finite (NaN
// and infinities have an all-ones exponent: adding one to it carries into
// bit 31; no float addition chain, so the loop runs at load speed).
func maxAbs(x []float32) (m float32, finite bool) {
	var carry uint32
	for _, v := range x {
		carry |= math.Float32bits(v)&0x7f800000 + 0x00800000
		if a := abs32(v); a > m {
			m = a
		}
	}
	return m, carry&0x80000000 == 0
}

// roundDiv sets out[i] = round(x[i] / scale), C's round, for finite x:
// y = x[i]/scale (float32, as in QuantizeQ8) plus ±0.5 is exact in float64,
// and truncating it rounds half away from zero.
func roundDiv(out []int8, x []float32, scale float32) {
	out = out[:len(x)]
	for i, v := range x {
		y := float64(v / scale)
		out[i] = int8(int32(y + math.Copysign(0.5, y)))
	}
}

// QuantizeQ8 writes q and per-group scales s for x with export.py's and
// runq.c's algorithm: scale = max|x| / 127 in float32, value = round(x /
// scale). A group of zeros gets scale 0 and values 0 (C would divide 0 by 0).
// round is the rounding rule: export.py's torch.round for weights, C's
// round for activations.
func QuantizeQ8(q []int8, s []float32, x []float32, gs int, round func(float32) float32) {
	for g := 0; g*gs < len(x); g++ {
		group := x[g*gs : min((g+1)*gs, len(x))]
		var wmax float32
		for _, v := range group {
			wmax = max(wmax, abs32(v))
		}
		scale := wmax / 127
		s[g] = scale
		out := q[g*gs : g*gs+len(group)]
		if scale == 0 {
			clear(out)
			continue
		}
		for i, v := range group {
			out[i] = int8(round(v / scale))
		}
	}
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// RoundHalfAwayFromZero is C's round().
func RoundHalfAwayFromZero(x float32) float32 { return float32(math.Round(float64(x))) }

// RoundHalfEven is torch.round().
func RoundHalfEven(x float32) float32 { return float32(math.RoundToEven(float64(x))) }
