package model

import "math"

// tensor is a weight matrix of rows × cols, row-major, stored either as
// float32 or as Q8_0: int8 values with one float32 scale per gs consecutive
// values of the flattened matrix (llama2.c's version 2 format). Groups need
// not start at row boundaries: export.py only requires gs to divide the
// whole tensor.
type tensor struct {
	rows, cols int
	f          []float32 // (rows, cols) fp32 values; nil when quantized
	q          []int8    // (rows, cols) Q8_0 values
	s          []float32 // (rows*cols/gs) scales: value = q[i] * s[i/gs]
	gs         int
}

// quantized reports whether t holds Q8_0 values.
func (t *tensor) quantized() bool { return t.f == nil }

// rowTo writes row r as float32 into dst (dequantizing a Q8_0 row): the
// token embedding reads one row per token, so a quantized table is never
// expanded whole.
func (t *tensor) rowTo(dst []float32, r int) {
	off := r * t.cols
	if !t.quantized() {
		copy(dst, t.f[off:off+t.cols])
		return
	}
	for j := range dst[:t.cols] {
		dst[j] = float32(t.q[off+j]) * t.s[(off+j)/t.gs]
	}
}

// mulRows sets out[i] = row lo+i · x for rows [lo, lo+len(out)).
func (t *tensor) mulRows(out []float32, lo int, x *activation) {
	n := t.cols
	hi := lo + len(out)
	if !t.quantized() {
		matVec(out, t.f[lo*n:hi*n], x.f)
		return
	}
	matVecQ8(out, t.q, t.s, lo*n, t.gs, x.q, x.s)
}

// mulBatch sets out[b*rows+r] = row r · x[b*cols:(b+1)*cols] for every
// vector b of a batch, whose activations (quantized by the caller for a
// Q8_0 tensor) are acts. Float32 weights go through matMat. Q8_0 weights are
// taken in blocks of rows small enough to stay in L2, each block multiplying
// every vector of the batch, so that the weights are read from memory once
// per batch instead of once per vector; the values are those of mulRows.
func (t *tensor) mulBatch(out, x []float32, acts []activation) {
	if !t.quantized() {
		matMat(out, t.f, x, len(acts))
		return
	}
	done := mulBatchQ8Tiles(out, t, acts)
	n, m := t.cols, t.rows
	block := max(4, q8BlockBytes/n&^3)
	for r0 := 0; r0 < m; r0 += block {
		r1 := min(r0+block, m)
		for b := done; b < len(acts); b++ {
			matVecQ8(out[b*m+r0:b*m+r1], t.q, t.s, r0*n, t.gs, acts[b].q, acts[b].s)
		}
	}
}

// q8BlockBytes bounds the int8 weights of the block of rows that mulBatch
// keeps in L2 while it runs through the batch. The int8 kernel does enough
// work per byte that L2 feeds it: blocks of 128 KiB ran 4% faster than
// blocks of 32 KiB (which fit L1) and as fast as 512 KiB.
const q8BlockBytes = 128 << 10

// activation is a vector that multiplies weight tensors: the float32 values
// and, for a Q8_0 model, their quantization in groups of gs along the vector
// (the last group may be shorter), refreshed by quantize.
type activation struct {
	f  []float32
	q  []int8    // nil for fp32 models
	s  []float32 // (ceil(len/gs)) scales
	gs int
}

func newActivation(f []float32, gs int) activation {
	a := activation{f: f}
	if gs > 0 {
		a.q = make([]int8, len(f))
		a.s = make([]float32, (len(f)+gs-1)/gs)
		a.gs = gs
	}
	return a
}

// quantize refreshes the int8 form of a (nothing for fp32 models):
// quantizeQ8 with C's rounding, by a faster equivalent (kernels_q8.go).
func (a *activation) quantize() {
	if a.q != nil {
		quantizeActivation(a.q, a.s, a.f, a.gs)
	}
}

// quantizeQ8 writes q and per-group scales s for x with export.py's and
// runq.c's algorithm: scale = max|x| / 127 in float32, value = round(x /
// scale). A group of zeros gets scale 0 and values 0 (C would divide 0 by 0).
// round is the rounding rule: export.py's torch.round for weights, C's
// round for activations.
func quantizeQ8(q []int8, s []float32, x []float32, gs int, round func(float32) float32) {
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

// roundHalfAwayFromZero is C's round().
func roundHalfAwayFromZero(x float32) float32 { return float32(math.Round(float64(x))) }

// roundHalfEven is torch.round().
func roundHalfEven(x float32) float32 { return float32(math.RoundToEven(float64(x))) }
