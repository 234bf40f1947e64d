package model

import "github.com/llama2-go/llama2/internal/kernels"

// tensor is a weight matrix of rows × cols, row-major, a view into the
// file's bytes in the element type the file stores:
//
//   - float32 (f);
//   - llama2.c's Q8_0 (version 2): int8 values with one float32 scale per gs
//     consecutive values of the flattened matrix (q, s, gs). Groups need not
//     start at row boundaries: export.py only requires gs to divide the
//     whole tensor;
//   - GGUF's F16 and BF16 (h);
//   - GGUF's block types (kernels.Block: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
//     IQ4_NL, the K-quants): each row a run of blocks,
//     rowBytes long, read in place by the block type's kernels (blk).
type tensor struct {
	rows, cols int
	f          []float32 // (rows, cols) fp32 values
	q          []int8    // (rows, cols) llama2.c Q8_0 values
	s          []float32 // (rows*cols/gs) scales: value = q[i] * s[i/gs]
	gs         int
	h          []uint16           // (rows, cols) F16 or BF16 values
	bf16       bool               // h holds BF16 rather than F16
	b          []byte             // (rows, rowBytes) blocks of a GGUF block type
	blk        *kernels.BlockType // the block type of b
	rowBytes   int
}

// bytes is the size of t's weights in memory.
func (t *tensor) bytes() int64 {
	n := int64(t.rows) * int64(t.cols)
	switch {
	case t.f != nil:
		return 4 * n
	case t.q != nil:
		return n + 4*int64(len(t.s))
	case t.h != nil:
		return 2 * n
	}
	return int64(t.rows) * int64(t.rowBytes)
}

// rowTo writes row r as float32 into dst (dequantizing a quantized row):
// the token embedding reads one row per token, so a quantized table is never
// expanded whole.
func (t *tensor) rowTo(dst []float32, r int) {
	off := r * t.cols
	dst = dst[:t.cols]
	switch {
	case t.f != nil:
		copy(dst, t.f[off:off+t.cols])
	case t.q != nil:
		for j := range dst {
			dst[j] = float32(t.q[off+j]) * t.s[(off+j)/t.gs]
		}
	case t.h != nil && t.bf16:
		kernels.DequantRowBF16(dst, t.h[off:off+t.cols])
	case t.h != nil:
		kernels.DequantRowF16(dst, t.h[off:off+t.cols])
	case t.blk.Resident:
		p := r &^ (kernels.ResidentRows - 1)
		kernels.DequantResidentRow(t.blk, dst, t.b[p*t.rowBytes:(p+kernels.ResidentRows)*t.rowBytes], r-p)
	default:
		t.blk.Dequant(dst, t.b[r*t.rowBytes:(r+1)*t.rowBytes])
	}
}

// mulRows sets out[i] = row lo+i · x for rows [lo, lo+len(out)).
func (t *tensor) mulRows(out []float32, lo int, x *activation) {
	n := t.cols
	hi := lo + len(out)
	switch {
	case t.f != nil:
		kernels.MatVec(out, t.f[lo*n:hi*n], x.f)
	case t.q != nil:
		kernels.MatVecQ8(out, t.q, t.s, lo*n, t.gs, x.q, x.s)
	case t.h != nil && t.bf16:
		kernels.MatVecBF16(out, t.h[lo*n:hi*n], x.f)
	case t.h != nil:
		kernels.MatVecF16(out, t.h[lo*n:hi*n], x.f)
	case t.blk.Resident:
		t.mulResident(out, lo, x)
	default:
		t.blk.MatVec(out, t.b[lo*t.rowBytes:hi*t.rowBytes], x.q, x.s, x.sum)
	}
}

// mulBatch sets out[b*rows+r] = row r · x[b*cols:(b+1)*cols] for every
// vector b of a batch, whose activations (quantized by the caller for a
// quantized tensor) are acts, built by newActivations. Float weights go
// through the matrix-matrix kernels. llama2.c's Q8_0 weights are taken in
// blocks of rows small enough to stay in L2, each block multiplying every
// vector of the batch, so that the weights are read from memory once per
// batch instead of once per vector; the values are those of mulRows.
func (t *tensor) mulBatch(out, x []float32, acts []activation) {
	k := len(acts)
	switch {
	case t.f != nil:
		kernels.MatMat(out, t.f, x, k)
		return
	case t.h != nil && t.bf16:
		kernels.MatMatBF16(out, t.h, x, k)
		return
	case t.h != nil:
		kernels.MatMatF16(out, t.h, x, k)
		return
	case t.q == nil:
		// The batch's int8 forms are consecutive rows of one array
		// (newActivations), as the block kernels want them.
		n, nb := t.cols, t.cols/kernels.QBlock
		a := &acts[0]
		t.blk.MatMat(out, t.b, t.rows, a.q[:k*n], a.s[:k*nb], a.sum[:k*nb], k)
		return
	}
	done := 0
	if xq, xs, ok := contiguousQ8(acts); ok {
		done = kernels.MatMatQ8Tiles(out, t.q, t.s, t.rows, t.gs, xq, xs, k)
	}
	n, m := t.cols, t.rows
	block := max(4, q8BlockBytes/n&^3)
	for r0 := 0; r0 < m; r0 += block {
		r1 := min(r0+block, m)
		for b := done; b < len(acts); b++ {
			kernels.MatVecQ8(out[b*m+r0:b*m+r1], t.q, t.s, r0*n, t.gs, acts[b].q, acts[b].s)
		}
	}
}

// q8BlockBytes bounds the int8 weights of the block of rows that mulBatch
// keeps in L2 while it runs through the batch. The int8 kernel does enough
// work per byte that L2 feeds it: blocks of 128 KiB ran 4% faster than
// blocks of 32 KiB (which fit L1) and as fast as 512 KiB.
const q8BlockBytes = 128 << 10

// activation is a vector that multiplies weight tensors: the float32 values
// and, for a model with quantized tensors, their quantization in groups of
// gs along the vector (the last group may be shorter), refreshed by
// quantize. GGUF's block types also need each group's sum (qblock.go).
type activation struct {
	f   []float32
	q   []int8    // nil for float models
	s   []float32 // (ceil(len/gs)) scales
	sum []int32   // (len/gs) sums of q's groups, for GGUF block types; else nil
	gs  int
	// super: one scale for each super-block of qkK values (qblock.go).
	super bool
}

// actForm says which int8 form a model's activations need: none (gs 0),
// llama2.c's groups of gs, or GGUF's blocks of kernels.QBlock with their sums.
type actForm struct {
	gs    int
	sums  bool
	super bool // the scales equal within each super-block (qblock.go)
}

// actForms returns the int8 forms of the three activations the matrices
// multiply: xb (into wq, wk, wv, wo, w1 and w3), hb (into w2) and x (into
// the classifier). Each is w.act, with one scale per super-block if it
// multiplies a K-quant tensor (qblock.go).
func (w *weights) actForms() (xb, hb, x actForm) {
	form := func(ts ...*tensor) actForm {
		f := w.act
		for _, t := range ts {
			f.super = f.super || t.blk != nil && t.blk.SuperScale
		}
		return f
	}
	var xbT, hbT []*tensor
	for i := range w.layers {
		l := &w.layers[i]
		xbT = append(xbT, &l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w3)
		hbT = append(hbT, &l.w2)
	}
	return form(xbT...), form(hbT...), form(&w.classifier)
}

func newActivation(f []float32, form actForm) activation {
	a := activation{f: f}
	if form.gs > 0 {
		a.q = make([]int8, len(f))
		a.s = make([]float32, (len(f)+form.gs-1)/form.gs)
		a.gs, a.super = form.gs, form.super
		if form.sums {
			a.sum = make([]int32, len(f)/form.gs)
		}
	}
	return a
}

// quantize refreshes the int8 form of a (nothing for float models):
// kernels.QuantizeQ8 with C's rounding, by a faster equivalent (q8.go), and
// the group sums where the model needs them.
func (a *activation) quantize() {
	switch {
	case a.super:
		kernels.QuantizeSuperBlocks(a.q, a.s, a.sum, a.f)
	case a.sum != nil:
		kernels.QuantizeBlocks(a.q, a.s, a.sum, a.f)
	case a.q != nil:
		kernels.QuantizeActivation(a.q, a.s, a.f, a.gs)
	}
}

// contiguousQ8 returns the int8 values and the scales of a batch's
// activations as one run each, when they are consecutive rows of one array
// (newActivations makes them so), as the tile kernels want them.
func contiguousQ8(acts []activation) (xq []int8, xs []float32, ok bool) {
	a := &acts[0]
	k, n, ng := len(acts), len(a.q), len(a.s)
	if n == 0 || cap(a.q) < k*n || cap(a.s) < k*ng {
		return nil, nil, false
	}
	xq, xs = a.q[:k*n], a.s[:k*ng]
	for b := 1; b < k; b++ {
		if &acts[b].q[0] != &xq[b*n] || &acts[b].s[0] != &xs[b*ng] {
			return nil, nil, false
		}
	}
	return xq, xs, true
}
