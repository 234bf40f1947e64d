package model

import (
	"fmt"
)

// Batched prompt processing. Feeding a prompt token by token streams every
// weight once per token; pushing a batch of tokens through each layer
// together turns the matrix-vector products into matrix-matrix products that
// reuse each weight across the batch from cache. Attention stays causal:
// token b of the batch attends to positions 0..pos0+b.
//
// Q8_0 models batch the same way (tensor.mulBatch): their products give the
// same float32 values as the one-at-a-time path, bit for bit.
//
// The threads split a batch's tokens, except for large models, where they
// split each product's rows (prefill_rows.go).

// batchState holds the activations of a batch of tokens, row-major.
type batchState struct {
	size int       // capacity in tokens
	n    int       // tokens in the current batch
	pos0 int       // position of the first token
	x    []float32 // (size, dim) residual streams
	xb   []float32 // (size, dim)
	xb2  []float32 // (size, dim)
	q    []float32 // (size, dim)
	hb   []float32 // (size, hidden)
	hb2  []float32 // (size, hidden)
	cos  []float32 // (size, head_size/2) RoPE angles of each token's position
	sin  []float32 // (size, head_size/2)
	att  scores    // (heads*size, positions) attention scores of each token
	// kNew, vNew take the batch's keys and values before they go into
	// caches that are not float32 (batchKV).
	kNew, vNew []float32 // (size, kv_dim)

	// Each token's row of xb and hb as an activation, with its int8 form
	// for Q8_0 models.
	xbIn, hbIn []activation // (size)

	qkvBody, attnBody, ffnBody func(lo, hi int)

	// scratch is (size, 2*max(dim+2*kv_dim, hidden)) for row-split layers
	// (prefill_rows.go), nil when layers split tokens.
	scratch []float32
}

// batchGrain is the number of tokens a worker takes at a time, a multiple of
// the kernels.MatMat kernel's tile.
const batchGrain = 4

func newBatchState(s *Session, size int) *batchState {
	c := s.cfg
	half := c.HeadSize() / 2
	b := &batchState{
		size: size,
		x:    make([]float32, size*c.Dim), xb: make([]float32, size*c.Dim),
		xb2: make([]float32, size*c.Dim), q: make([]float32, size*c.Dim),
		hb: make([]float32, size*c.HiddenDim), hb2: make([]float32, size*c.HiddenDim),
		cos: make([]float32, size*half), sin: make([]float32, size*half),
		att:  newScores(c.Heads*size, c.SeqLen),
		kNew: make([]float32, size*c.KVDim()), vNew: make([]float32, size*c.KVDim()),
		xbIn: make([]activation, size), hbIn: make([]activation, size),
	}
	xbForm, hbForm, _ := s.m.w.actForms()
	newActivations(b.xbIn, b.xb, c.Dim, xbForm)
	newActivations(b.hbIn, b.hb, c.HiddenDim, hbForm)
	if rowSplitLayers(&s.m.w, s.pool.threads()) {
		b.scratch = make([]float32, size*2*max(c.Dim+2*c.KVDim(), c.HiddenDim))
	}
	b.qkvBody = s.qkvBatch
	b.attnBody = s.attentionBatch
	b.ffnBody = s.ffnBatch
	return b
}

// Prefill feeds tokens at positions pos, pos+1, ... without computing their
// logits: use it for the prompt tokens whose next token is already known,
// and PrefillLogits (or Forward) for the last one. With batching off
// (SessionOptions.Batch 1) it is Forward token by token. As with Forward,
// pos may not skip positions.
func (s *Session) Prefill(tokens []int, pos int) error {
	if err := s.enter(false); err != nil {
		return err
	}
	defer s.exit()
	if err := s.follows(pos); err != nil {
		return err
	}
	if err := s.prefill(tokens, pos); err != nil {
		return err
	}
	s.filled = pos + len(tokens)
	return nil
}

// prefill is Prefill for a caller that holds the session.
func (s *Session) prefill(tokens []int, pos int) error {
	c := &s.cfg
	if pos < 0 || pos+len(tokens) > c.SeqLen {
		return errPosition(pos+len(tokens)-1, c.SeqLen)
	}
	for _, t := range tokens {
		if t < 0 || t >= c.VocabSize {
			return errToken(t, c.VocabSize)
		}
	}
	if s.closed.Load() {
		return errSessionClosed
	}
	s.cached = s.cached[:min(len(s.cached), pos)]
	if s.batch == nil {
		for i, t := range tokens {
			if _, err := s.forward(t, pos+i); err != nil {
				return err
			}
		}
		return nil
	}
	for len(tokens) > 0 {
		n := min(len(tokens), s.batch.size)
		s.prefillBatch(tokens[:n], pos)
		tokens, pos = tokens[n:], pos+n
	}
	return nil
}

// PrefillLogits feeds tokens at positions pos, pos+1, ... as Prefill does
// and returns the logits for the token after the last one, as
// Forward(tokens[len(tokens)-1], pos+len(tokens)-1) would. The last token
// goes through the layers in the batch with the others, rather than through
// Forward after it, which streams every weight once more for one token
// (stories110M fp32, 128 tokens, 1 thread: 139.4 ms + 12.2 ms -> 142.6 ms).
// The slice is owned by the session and valid until its next call. The
// values are Forward's up to the order of float sums in the batched
// products (bit for bit where those are, as for llama2.c's Q8_0).
func (s *Session) PrefillLogits(tokens []int, pos int) ([]float32, error) {
	if err := s.enter(false); err != nil {
		return nil, err
	}
	defer s.exit()
	if err := s.follows(pos); err != nil {
		return nil, err
	}
	logits, err := s.prefillLogits(tokens, pos)
	if err == nil {
		s.filled = pos + len(tokens)
	}
	return logits, err
}

// prefillLogits is PrefillLogits for a caller that holds the session.
func (s *Session) prefillLogits(tokens []int, pos int) ([]float32, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("prefill: %w", ErrEmptyPrompt)
	}
	last := len(tokens) - 1
	if s.batch == nil || last == 0 {
		if err := s.prefill(tokens[:last], pos); err != nil {
			return nil, err
		}
		return s.forward(tokens[last], pos+last)
	}
	if err := s.prefill(tokens, pos); err != nil {
		return nil, err
	}
	// The last batch's last token is the prompt's last.
	b, dim := s.batch, s.cfg.Dim
	return s.logitsAfter(b.x[(b.n-1)*dim : b.n*dim]), nil
}

func (s *Session) prefillBatch(tokens []int, pos0 int) {
	c := &s.cfg
	b := s.batch
	b.n, b.pos0 = len(tokens), pos0
	dim, half := c.Dim, c.HeadSize()/2
	w := &s.m.w
	for i, t := range tokens {
		w.tokenEmbedding.rowTo(b.x[i*dim:(i+1)*dim], t)
		w.rope.angles(b.cos[i*half:(i+1)*half], b.sin[i*half:(i+1)*half], pos0+i)
	}
	// Only attention mixes tokens: everything else is per token, so each
	// worker takes the same tokens in both token-split phases (the pool
	// splits a given n the same way every time) and keeps them in its cache.
	n := len(tokens)
	b.att.reserve(pos0 + n)
	for l := range w.layers {
		s.layer = l
		if b.scratch != nil {
			s.prefillLayerRows(n)
			continue
		}
		s.pool.run(n, batchGrain, b.qkvBody)
		s.pool.run(c.Heads, attnGrain(c, s.pool.threads()), b.attnBody)
		s.pool.run(n, batchGrain, b.ffnBody)
	}
}

// qkvBatch normalises tokens [lo, hi) of the batch and projects them to
// queries, and to keys and values written straight into the cache
// (consecutive positions are consecutive cache rows), then adds the
// biases and rotates them (qkvEndToken).
func (s *Session) qkvBatch(lo, hi int) {
	b := s.batch
	lw := &s.m.w.layers[s.layer]
	dim := s.cfg.Dim
	n := hi - lo
	x, xb := b.x[lo*dim:hi*dim], b.xb[lo*dim:hi*dim]
	for i := range n {
		rmsnorm(xb[i*dim:(i+1)*dim], x[i*dim:(i+1)*dim], lw.rmsAtt, s.eps)
	}
	k, v := s.batchKV(lo, hi)
	xbIn := quantizeRows(b.xbIn[lo:hi])
	lw.wq.mulBatch(b.q[lo*dim:hi*dim], xb, xbIn)
	lw.wk.mulBatch(k, xb, xbIn)
	lw.wv.mulBatch(v, xb, xbIn)
	for i := lo; i < hi; i++ {
		s.qkvEndToken(i)
	}
}

// batchKV returns the rows that take the keys and values of the batch's
// tokens [lo, hi) at the current layer: for float32 caches the caches' own
// (consecutive positions are consecutive rows), else kNew, vNew, whose
// rows qkvEndToken stores.
func (s *Session) batchKV(lo, hi int) (k, v []float32) {
	b, kvDim := s.batch, s.cfg.KVDim()
	return s.keys.row(s.layer, b.pos0+lo, hi-lo, b.kNew[lo*kvDim:]),
		s.values.row(s.layer, b.pos0+lo, hi-lo, b.vNew[lo*kvDim:])
}

// qkvEndToken finishes token i of the batch after the q, k, v products
// (layerWeights.qkvEnd): its query, and its key and value, which go into
// the cache.
func (s *Session) qkvEndToken(i int) {
	b, dim, hs := s.batch, s.cfg.Dim, s.cfg.HeadSize()
	half := hs / 2
	k, v := s.batchKV(i, i+1)
	s.m.w.layers[s.layer].qkvEnd(b.q[i*dim:(i+1)*dim], k, v, &s.m.w.rope,
		b.cos[i*half:(i+1)*half], b.sin[i*half:(i+1)*half], hs)
	s.kvPut(s.layer, b.pos0+i, k, v)
}

// ffnBatch ends the layer for tokens [lo, hi) of the batch: the attention
// output projection and its residual, then the feed-forward block (rmsnorm,
// w1 and w3 with SwiGLU, w2) and its residual.
func (s *Session) ffnBatch(lo, hi int) {
	b, dim, hidden := s.batch, s.cfg.Dim, s.cfg.HiddenDim
	lw := &s.m.w.layers[s.layer]
	n := hi - lo
	x, xb, xb2 := b.x[lo*dim:hi*dim], b.xb[lo*dim:hi*dim], b.xb2[lo*dim:hi*dim]
	hb, hb2 := b.hb[lo*hidden:hi*hidden], b.hb2[lo*hidden:hi*hidden]
	lw.wo.mulBatch(xb2, xb, quantizeRows(b.xbIn[lo:hi]))
	for i := range n {
		addBias(xb2[i*dim:(i+1)*dim], lw.bo)
	}
	addInPlace(x, xb2)
	for i := range n {
		rmsnorm(xb[i*dim:(i+1)*dim], x[i*dim:(i+1)*dim], lw.rmsFFN, s.eps)
	}
	xbIn := quantizeRows(b.xbIn[lo:hi])
	lw.w1.mulBatch(hb, xb, xbIn)
	lw.w3.mulBatch(hb2, xb, xbIn)
	swiglu(hb, hb2)
	lw.w2.mulBatch(xb, hb, quantizeRows(b.hbIn[lo:hi]))
	addInPlace(x, xb)
}

// newActivations sets acts[i] to the activation of row i of f (rows of n
// floats). Their int8 forms, scales and sums are rows of one array each, as
// the batched kernels want them: acts[i].q[:k*n] (up to its capacity) is
// then the int8 form of rows i..i+k-1, and likewise s and sum.
func newActivations(acts []activation, f []float32, n int, form actForm) {
	if form.gs == 0 {
		for i := range acts {
			acts[i] = activation{f: f[i*n : (i+1)*n]}
		}
		return
	}
	ng, nb := (n+form.gs-1)/form.gs, n/form.gs
	q := make([]int8, len(acts)*n)
	s := make([]float32, len(acts)*ng)
	var sum []int32
	if form.sums {
		sum = make([]int32, len(acts)*nb)
	}
	for i := range acts {
		// A slice keeps the capacity to the end of its array.
		acts[i] = activation{f: f[i*n : (i+1)*n], q: q[i*n : (i+1)*n], s: s[i*ng : (i+1)*ng], gs: form.gs, super: form.super}
		if form.sums {
			acts[i].sum = sum[i*nb : (i+1)*nb]
		}
	}
}

// quantizeRows refreshes the int8 form of each activation (nothing for
// fp32 models) and returns them.
func quantizeRows(acts []activation) []activation {
	for i := range acts {
		acts[i].quantize()
	}
	return acts
}
