package model

import (
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/llama2-go/llama2/internal/kernels"
)

// makeResident repacks w's Q8_0, Q4_0, Q4_K and Q6_K matrices into
// resident panels when this build has their kernels and the weights were
// read into private memory (never a mapped file: it is read-only and
// shared), and every cut of the
// rows between threads falls on a panel: the threads' chunks are rowGrain
// rows of the stacked products (q, k, v; w1, w3) and Dim and KVDim are
// whole panels. The token embedding is repacked only when it is also the
// classifier. It returns the types it repacked ("Q4_K, Q6_K"), "" for
// none.
func (w *weights) makeResident(cfg *Config) (string, error) {
	if !kernels.ResidentKernels || rowGrain%kernels.ResidentRows != 0 || cfg.Dim%kernels.ResidentRows != 0 || cfg.KVDim()%kernels.ResidentRows != 0 {
		return "", nil
	}
	ts := []*tensor{&w.classifier}
	for i := range w.layers {
		l := &w.layers[i]
		ts = append(ts, &l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w2, &l.w3)
	}
	var (
		mu       sync.Mutex
		repacked = map[string]bool{}
	)
	_, err := rewriteWeights(w.classifier.b, func() {
		// All views into the one file, each tensor's bytes its own: one
		// goroutine a core (TinyLlama Q8_0, 1.1 GB: 0.42 s on one core, 0.24
		// on two, on top of 0.31 s to read it from the page cache).
		var wg sync.WaitGroup
		cores := make(chan struct{}, runtime.GOMAXPROCS(0))
		for _, t := range ts {
			cores <- struct{}{}
			wg.Go(func() {
				defer func() { <-cores }()
				if t.makeResident() {
					mu.Lock()
					repacked[t.blk.Type.String()] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	})
	if e := &w.tokenEmbedding; len(e.b) > 0 && addrOf(e.b) == addrOf(w.classifier.b) {
		e.blk = w.classifier.blk
	}
	return strings.Join(slices.Sorted(maps.Keys(repacked)), ", "), err
}

// makeResident repacks t's rows in place into resident panels if t's
// block type has them and t is whole panels, and reports whether it did.
func (t *tensor) makeResident() bool {
	res := kernels.ResidentOf(t.blk)
	if res == nil || t.rows%kernels.ResidentRows != 0 || t.rows == 0 || t.cols == 0 {
		return false
	}
	nb := t.cols / t.blk.BlockSize
	panel := make([]byte, kernels.ResidentRows*t.rowBytes)
	for p := 0; p < t.rows; p += kernels.ResidentRows {
		dst := t.b[p*t.rowBytes : (p+kernels.ResidentRows)*t.rowBytes]
		copy(panel, dst)
		kernels.PackResident(res, dst, panel, nb)
	}
	t.blk = res
	return true
}

// mulResident is mulRows for resident tensors: whole panels go to the
// kernel, the rows of a panel cut by lo or hi through a panel's worth of
// scratch.
func (t *tensor) mulResident(out []float32, lo int, x *activation) {
	hi := lo + len(out)
	for p := lo &^ (kernels.ResidentRows - 1); p < hi; {
		if p >= lo && p+kernels.ResidentRows <= hi {
			e := p + (hi-p)&^(kernels.ResidentRows-1)
			t.blk.MatVec(out[p-lo:e-lo], t.b[p*t.rowBytes:e*t.rowBytes], x.q, x.s, x.sum)
			p = e
			continue
		}
		var tmp [kernels.ResidentRows]float32
		t.blk.MatVec(tmp[:], t.b[p*t.rowBytes:(p+kernels.ResidentRows)*t.rowBytes], x.q, x.s, x.sum)
		a, e := max(p, lo), min(p+kernels.ResidentRows, hi)
		copy(out[a-lo:e-lo], tmp[a-p:e-p])
		p += kernels.ResidentRows
	}
}
