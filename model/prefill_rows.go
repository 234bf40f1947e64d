package model

// Row-split prompt layers, for large models on several threads.
//
// prefillBatch splits a batch's tokens between the threads, so that every
// step but attention runs in one dispatch per phase; but then each thread
// streams every weight of the layer. When a layer's weights are far larger
// than the caches, the threads read them from memory once each unless they
// stay close enough to share the L3. Splitting the rows of each product
// instead reads each weight once whatever the threads, for a dispatch per
// product and per step between them (about ten per layer, against three).
//
// On the 2-core Zen 5 VM, TinyLlama-shaped fp32 (176 MB a layer), pp64 at 2
// threads, one process per run, alternated: token split 70-99 tok/s
// (median 76), row split 71-103 (median 86), faster in 5 of 6 pairs; in a
// slower hour 55-71 against 62-84, faster in all 4. At stories110M (28 MB
// a layer) and stories42M (13 MB) the two were inside the noise of each
// other (row split faster in 2 and 1 of 3 pairs). Hence rowSplitMinBytes.

// rowSplitMinBytes is the size of a layer's weights from which prompts
// split rows rather than tokens (on more than one thread). A variable so
// that tests can run the row-split path on small models.
var rowSplitMinBytes int64 = 64 << 20

// rowSplitLayers reports whether prompts on threads threads should take
// rowSplitLayers: more than one thread, the first layer at least
// rowSplitMinBytes, and every product's tensor able to give a view of a
// range of its rows.
func rowSplitLayers(w *weights, threads int) bool {
	if threads < 2 || len(w.layers) == 0 {
		return false
	}
	lw := &w.layers[0]
	var size int64
	for _, t := range []*tensor{&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w1, &lw.w2, &lw.w3} {
		if t.q != nil { // llama2.c's Q8_0 groups may straddle rows
			return false
		}
		size += t.bytes()
	}
	return size >= rowSplitMinBytes
}

// mulBatchRows computes rows [lo, hi) of t times the batch's vectors x (one
// activation each) into out, k rows of t.rows: through scratch, since the
// kernels write the rows of a block for each vector contiguously, and the
// rows of one call are a block. scratch[lo*k:hi*k] is used, so calls for
// disjoint rows can run at once.
func (t *tensor) mulBatchRows(out, x []float32, acts []activation, lo, hi int, scratch []float32) {
	k, m, r := len(acts), t.rows, hi-lo
	tmp := scratch[lo*k : hi*k]
	if v, ok := t.rowsView(lo, hi); ok {
		v.mulBatch(tmp, x, acts)
	} else { // resident panels cut inside a panel
		for b := range k {
			t.mulRows(tmp[b*r:(b+1)*r], lo, &acts[b])
		}
	}
	for b := range k {
		copy(out[b*m+lo:b*m+hi], tmp[b*r:(b+1)*r])
	}
}

// prefillLayerRows runs the current layer for the batch's n tokens with the
// products split by rows and the per-token steps by tokens. It computes
// what qkvBatch, attentionBatch and ffnBatch do, the same float operations
// on the same values.
func (s *Session) prefillLayerRows(n int) {
	c, b := &s.cfg, s.batch
	lw := &s.m.w.layers[s.layer]
	dim, kvDim, hidden := c.Dim, c.KVDim(), c.HiddenDim
	k, v := s.batchKV(0, n)
	xb, xb2, q := b.xb[:n*dim], b.xb2[:n*dim], b.q[:n*dim]
	hb, hb2 := b.hb[:n*hidden], b.hb2[:n*hidden]
	xbIn, hbIn, sc := b.xbIn[:n], b.hbIn[:n], b.scratch
	perToken := func(f func(i int)) {
		s.pool.run(n, batchGrain, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				f(i)
			}
		})
	}

	perToken(func(i int) {
		rmsnorm(xb[i*dim:(i+1)*dim], b.x[i*dim:(i+1)*dim], lw.rmsAtt, s.eps)
		xbIn[i].quantize()
	})
	s.pool.run(dim+2*kvDim, rowGrain, func(lo, hi int) {
		// One product of (dim + 2*kv_dim) rows, as Session.qkv.
		if a, e := lo, min(hi, dim); a < e {
			lw.wq.mulBatchRows(q, xb, xbIn, a, e, sc)
		}
		if a, e := max(lo-dim, 0), min(hi-dim, kvDim); a < e {
			lw.wk.mulBatchRows(k, xb, xbIn, a, e, sc[n*dim:])
		}
		if a, e := max(lo-dim-kvDim, 0), min(hi-dim-kvDim, kvDim); a < e {
			lw.wv.mulBatchRows(v, xb, xbIn, a, e, sc[n*(dim+kvDim):])
		}
	})
	perToken(s.qkvEndToken)
	s.pool.run(c.Heads, attnGrain(c, s.pool.threads()), b.attnBody)
	perToken(func(i int) { xbIn[i].quantize() })
	s.pool.run(dim, rowGrain, func(lo, hi int) { lw.wo.mulBatchRows(xb2, xb, xbIn, lo, hi, sc) })
	perToken(func(i int) {
		x := b.x[i*dim : (i+1)*dim]
		addBias(xb2[i*dim:(i+1)*dim], lw.bo)
		addInPlace(x, xb2[i*dim:(i+1)*dim])
		rmsnorm(xb[i*dim:(i+1)*dim], x, lw.rmsFFN, s.eps)
		xbIn[i].quantize()
	})
	s.pool.run(hidden, rowGrain, func(lo, hi int) {
		lw.w1.mulBatchRows(hb, xb, xbIn, lo, hi, sc)
		lw.w3.mulBatchRows(hb2, xb, xbIn, lo, hi, sc[n*hidden:])
		for i := range n {
			swiglu(hb[i*hidden+lo:i*hidden+hi], hb2[i*hidden+lo:i*hidden+hi])
		}
	})
	perToken(func(i int) { hbIn[i].quantize() })
	s.pool.run(dim, rowGrain, func(lo, hi int) { lw.w2.mulBatchRows(xb, hb, hbIn, lo, hi, sc) })
	perToken(func(i int) { addInPlace(b.x[i*dim:(i+1)*dim], xb[i*dim:(i+1)*dim]) })
}
