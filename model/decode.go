package model

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/llama2-go/llama2/internal/kernels"
)

// Batched decoding: one forward pass advances several sequences by one
// token each. Every sequence has its own session (KV cache) and position;
// their activations go through each weight matrix together, as the rows of
// a matrix-matrix product (tensor.mulBatch, the kernels of batched
// prompts), so each weight is read from memory once per step instead of
// once per sequence; a step of one sequence takes the matrix-vector
// kernels, as a token alone does. Attention stays per sequence, over its
// own cache.
//
// The work of a product is split between the cores by weight rows (each
// core reads its share of the weights once, for every sequence); a
// sequence's values do not depend on the other sequences of the step, so it
// gets the same tokens alone or in any batch.

// BatchOptions configures [Model.NewBatch]. The zero value is the default.
type BatchOptions struct {
	// Size is the most sequences a step advances; 0 means 8.
	Size int
	// Threads is the number of cores a step uses; 0 means all.
	Threads int
}

// Batch advances up to its size of [Sequence]s by one token each in one
// forward pass ([Batch.Step]). It holds the activations of a step, not the
// sequences' caches: those are their sessions'. A batch is used by one
// goroutine at a time: a call made while another is running on it fails
// with [ErrBusy]. Close it when done; a batch dropped without Close stops
// its worker goroutines once the garbage collector finds it unreachable.
type Batch struct {
	m       *Model
	cfg     Config
	eps     float32
	pool    *pool
	ownPool bool
	size    int
	closed  atomic.Bool
	busy    atomic.Bool // held by the call running on the batch
	cleanup runtime.Cleanup

	// The current step.
	entries     []BatchEntry
	stepEntries []BatchEntry // Step's entries, kept so a step allocates nothing
	stepSeqs    []*Sequence  // Step's sequences, while they sample
	stepLogits  []float32    // their logits
	n           int
	layer       int

	x, xb, xb2 []float32 // (size, dim)
	qkv        []float32 // (size, dim+2*kv_dim) q, k and v of each sequence
	hb, hb2    []float32 // (size, hidden)
	logits     []float32 // (size, vocab)
	scratch    []float32 // (size, widest product): workers' tiles before they are scattered
	cos, sin   []float32 // (size, head_size/2)

	xbIn, hbIn, xIn []activation // (size) rows of xb, hb and x, with their int8 forms

	phase int // what eachBody runs

	qkvBody, attnBody, woBody, ffnUpBody, w2Body, clsBody, eachBody, acceptBody func(lo, hi int)
}

// DefaultBatchSize is the number of sequences a batch advances together
// unless told otherwise.
const DefaultBatchSize = 8

// NewBatch allocates a batch for up to opts.Size sequences of m.
func (m *Model) NewBatch(opts BatchOptions) (*Batch, error) {
	if opts.Size < 0 || opts.Threads < 0 {
		return nil, fmt.Errorf("new batch: size %d and threads %d must not be negative", opts.Size, opts.Threads)
	}
	if m.closed.Load() {
		return nil, fmt.Errorf("new batch: model %s: %w", m.path, ErrClosed)
	}
	size := opts.Size
	if size == 0 {
		size = DefaultBatchSize
	}
	threads := opts.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	b := newBatch(m, newPool(threads), size, true)
	// The workers reference the pool, never the batch.
	b.cleanup = runtime.AddCleanup(b, (*pool).close, b.pool)
	return b, nil
}

func newBatch(m *Model, p *pool, size int, ownPool bool) *Batch {
	c := m.Config
	wide := max(c.Dim+2*c.KVDim(), c.HiddenDim, c.VocabSize)
	half := c.HeadSize() / 2
	b := &Batch{
		m: m, cfg: c, eps: c.normEps(), pool: p, ownPool: ownPool, size: size,
		x: make([]float32, size*c.Dim), xb: make([]float32, size*c.Dim), xb2: make([]float32, size*c.Dim),
		qkv: make([]float32, size*(c.Dim+2*c.KVDim())),
		hb:  make([]float32, size*c.HiddenDim), hb2: make([]float32, size*c.HiddenDim),
		logits: make([]float32, size*c.VocabSize), scratch: make([]float32, size*wide),
		cos: make([]float32, size*half), sin: make([]float32, size*half),
		xbIn: make([]activation, size), hbIn: make([]activation, size), xIn: make([]activation, size),
		entries: make([]BatchEntry, 0, size),
	}
	xbForm, hbForm, xForm := m.w.actForms()
	newActivations(b.xbIn, b.xb, c.Dim, xbForm)
	newActivations(b.hbIn, b.hb, c.HiddenDim, hbForm)
	newActivations(b.xIn, b.x, c.Dim, xForm)
	b.qkvBody, b.attnBody, b.woBody = b.qkvRows, b.attention, b.woRows
	b.ffnUpBody, b.w2Body, b.clsBody = b.ffnUpRows, b.w2Rows, b.classifierRows
	b.eachBody, b.acceptBody = b.eachEntry, b.acceptRange
	return b
}

// Size is the most sequences one step advances.
func (b *Batch) Size() int { return b.size }

// Close stops the batch's worker goroutines (after the step running, if
// any). Step then fails with [ErrClosed].
func (b *Batch) Close() {
	if b.closed.Swap(true) {
		return
	}
	b.cleanup.Stop()
	if b.ownPool {
		b.pool.close()
	}
}

var errBatchBusy = fmt.Errorf("batch: another call is running on it: %w", ErrBusy)

// enter marks the batch in use until b.busy is cleared: a call from
// another goroutine meanwhile fails with ErrBusy (two steps at once mixed
// their entries and panicked in a pool worker).
func (b *Batch) enter() error {
	if !b.busy.CompareAndSwap(false, true) {
		return errBatchBusy
	}
	return nil
}

// BatchEntry is one sequence's part of a batched forward pass
// ([Batch.Forward]): Token fed at position Pos of Session's cache.
type BatchEntry struct {
	Session *Session
	Token   int
	Pos     int
}

var errForwardArgs = errors.New("batch forward")

// Forward feeds each entry's token at its position on its session, in one
// forward pass, and returns the logits after each: VocabSize floats for
// entry i at [i*VocabSize, (i+1)*VocabSize). The slice is the batch's,
// valid until its next call. The entries' sessions must be distinct, of
// the batch's model, at most [Batch.Size] of them; as with
// [Session.Forward], each session's cache must hold positions 0..Pos-1.
// A sequence's logits do not depend on the other entries. A session in
// use by another call, or by a running [Sequence], fails with [ErrBusy].
func (b *Batch) Forward(entries []BatchEntry) ([]float32, error) {
	if err := b.enter(); err != nil {
		return nil, fmt.Errorf("%w: %w", errForwardArgs, err)
	}
	defer b.busy.Store(false)
	if err := b.check(entries); err != nil || len(entries) == 0 {
		return nil, err
	}
	if err := b.hold(entries, false); err != nil {
		return nil, err
	}
	defer b.letGo(entries)
	return b.run(entries), nil
}

// check validates a step's entries, all but their positions, which hold
// checks with the sessions held.
func (b *Batch) check(entries []BatchEntry) error {
	if b.closed.Load() {
		return fmt.Errorf("%w: %w", errForwardArgs, ErrClosed)
	}
	if len(entries) > b.size {
		return fmt.Errorf("%w: %d entries, more than the batch's %d", errForwardArgs, len(entries), b.size)
	}
	c := &b.cfg
	for i, e := range entries {
		switch {
		case e.Session == nil:
			return fmt.Errorf("%w: entry %d has no session", errForwardArgs, i)
		case e.Session.closed.Load():
			return fmt.Errorf("%w: entry %d: %w", errForwardArgs, i, errSessionClosed)
		case e.Session.m != b.m:
			return fmt.Errorf("%w: entry %d is of another model", errForwardArgs, i)
		case e.Token < 0 || e.Token >= c.VocabSize:
			return fmt.Errorf("%w: entry %d: %w", errForwardArgs, i, errToken(e.Token, c.VocabSize))
		case e.Pos < 0 || e.Pos >= c.SeqLen:
			return fmt.Errorf("%w: entry %d: %w", errForwardArgs, i, errPosition(e.Pos, c.SeqLen))
		}
		for j, p := range entries[:i] {
			if p.Session == e.Session {
				return fmt.Errorf("%w: entries %d and %d share a session", errForwardArgs, j, i)
			}
		}
	}
	return nil
}

// hold takes the entries' sessions (Session.enter; forSequence for
// Step's) and checks that no entry skips a position; on failure it holds
// none.
func (b *Batch) hold(entries []BatchEntry, forSequence bool) error {
	for i, e := range entries {
		err := e.Session.enter(forSequence)
		if err == nil {
			if err = e.Session.follows(e.Pos); err != nil {
				e.Session.exit()
			}
		}
		if err != nil {
			b.letGo(entries[:i])
			return fmt.Errorf("%w: entry %d: %w", errForwardArgs, i, err)
		}
	}
	return nil
}

// letGo ends what hold began.
func (b *Batch) letGo(entries []BatchEntry) {
	for _, e := range entries {
		e.Session.exit()
	}
}

// run feeds the checked entries, their sessions held, and returns their
// logits.
func (b *Batch) run(entries []BatchEntry) []float32 {
	b.entries, b.n = append(b.entries[:0], entries...), len(entries)
	for _, e := range entries {
		s := e.Session
		s.cached = s.cached[:min(len(s.cached), e.Pos)]
		s.filled = e.Pos + 1
	}
	b.forward()
	clear(b.entries)
	b.entries = b.entries[:0]
	return b.logits[:len(entries)*b.cfg.VocabSize]
}

// forward runs the layers for the step's entries: Session.Forward's
// operations in the same order, a row of each activation per entry.
func (b *Batch) forward() {
	c := &b.cfg
	w := &b.m.w
	dim, kvDim, hs, n := c.Dim, c.KVDim(), c.HeadSize(), b.n
	half := hs / 2
	qkvDim := dim + 2*kvDim
	for i, e := range b.entries {
		e.Session.att.reserve(e.Pos + 1)
		w.tokenEmbedding.rowTo(b.x[i*dim:(i+1)*dim], e.Token)
		w.rope.angles(b.cos[i*half:(i+1)*half], b.sin[i*half:(i+1)*half], e.Pos)
	}
	// The steps of each sequence alone (norms, its int8 forms, rotating q
	// and k into its cache) run on the pool too, a sequence to a worker:
	// one after another they were 4% of a step of 8 (TinyLlama Q4_K_M, 2
	// threads, Zen 4 family 25 model 17).
	for l := range w.layers {
		b.layer = l
		b.each(phaseAttnIn)
		b.pool.run(qkvDim, rowGrain, b.qkvBody)
		b.each(phaseKV)
		b.pool.run(n*c.Heads, c.KVMul(), b.attnBody)
		b.each(phaseAttnOut)
		b.pool.run(dim, rowGrain, b.woBody)
		b.each(phaseFFNIn)
		b.pool.run(c.HiddenDim, rowGrain, b.ffnUpBody)
		b.each(phaseFFNOut)
		b.pool.run(dim, rowGrain, b.w2Body)
	}
	b.each(phaseFinal)
	b.pool.run(c.VocabSize, rowGrain, b.clsBody)
}

// The per-sequence steps of a layer, in forward's order.
const (
	phaseAttnIn  = iota // the residual of the layer before, the attention's norm, its int8 form
	phaseKV             // q and k rotated, k and v into the sequence's cache
	phaseAttnOut        // the attention's output in int8
	phaseFFNIn          // the attention's residual, the FFN's norm, its int8 form
	phaseFFNOut         // the FFN's hidden activation in int8
	phaseFinal          // the last residual, the final norm, its int8 form
)

// each runs phase for every entry of the step, split between the workers.
func (b *Batch) each(phase int) {
	b.phase = phase
	b.pool.run(b.n, 1, b.eachBody)
}

// eachEntry runs b.phase for the entries [lo, hi).
func (b *Batch) eachEntry(lo, hi int) {
	c, w := &b.cfg, &b.m.w
	dim, kvDim, hs := c.Dim, c.KVDim(), c.HeadSize()
	half, qkvDim := hs/2, dim+2*kvDim
	lw := &w.layers[b.layer]
	for i := lo; i < hi; i++ {
		x, xb, xb2 := b.x[i*dim:(i+1)*dim], b.xb[i*dim:(i+1)*dim], b.xb2[i*dim:(i+1)*dim]
		switch b.phase {
		case phaseAttnIn:
			if b.layer > 0 {
				addInPlace(x, xb) // the FFN's output of the layer before
			}
			rmsnorm(xb, x, lw.rmsAtt, b.eps)
			b.xbIn[i].quantize()
		case phaseKV:
			e := b.entries[i]
			s := e.Session
			s.layer = b.layer
			row := b.qkv[i*qkvDim : (i+1)*qkvDim]
			k, v := s.kvRow(b.layer, e.Pos)
			copy(k, row[dim:dim+kvDim])
			copy(v, row[dim+kvDim:])
			lw.qkvEnd(row[:dim], k, v, &w.rope, b.cos[i*half:(i+1)*half], b.sin[i*half:(i+1)*half], hs)
			s.kvPut(b.layer, e.Pos, k, v)
		case phaseAttnOut:
			b.xbIn[i].quantize()
		case phaseFFNIn:
			addBias(xb2, lw.bo)
			addInPlace(x, xb2)
			rmsnorm(xb, x, lw.rmsFFN, b.eps)
			b.xbIn[i].quantize()
		case phaseFFNOut:
			b.hbIn[i].quantize()
		case phaseFinal:
			addInPlace(x, xb)
			rmsnorm(x, x, w.rmsFinal, b.eps)
			b.xIn[i].quantize()
		}
	}
}

// rows computes the part of rows [lo, hi) of a stacked product (whose
// vectors' outputs are stride floats apart in out) that falls into the
// tensor t, whose rows are numbered from base: for each of the step's
// vectors (x, one row of t.cols floats each, with their activations acts).
// Each block of rows goes through scratch, at the rows' place, then is
// scattered into out.
func (b *Batch) rows(out []float32, stride int, t *tensor, base, lo, hi int, x []float32, acts []activation) {
	r0, r1 := max(lo-base, 0), min(hi-base, t.rows)
	if r0 >= r1 {
		return
	}
	n := b.n
	if n == 1 {
		// One sequence: the matrix-vector kernel over the whole range,
		// as a Session's token takes it, with the same values (batch
		// invariance). A block of rows gains nothing from one vector,
		// and the panel kernels then did not prefetch: on an Intel Xeon
		// (family 6 model 207) a 1-client step of the TinyLlama-shaped
		// Q4_K_M file took 33 ms through them, bench's tg 21.6 ms
		// (docs/performance.md, fifth session).
		t.mulRows(out[base+r0:base+r1], r0, &acts[0])
		return
	}
	// Blocks of rows that stay in L2, each multiplied by every sequence of
	// the step before the next is read, so that the weights come from
	// memory once per step.
	block := max(16, decodeBlockBytes/max(1, int(t.bytes()/int64(t.rows)))&^15)
	for a := r0; a < r1; a += block {
		e := min(a+block, r1)
		m := e - a
		tile := b.scratch[n*(base+a) : n*(base+e)]
		if v, ok := t.rowsView(a, e); ok && (t.f == nil || kernels.MatMatBatchInvariant()) {
			// The batched kernels give each vector the matrix-vector
			// kernel's values (batch invariance) and take the step's
			// sequences through the block together: the panels and
			// tiles unpack each weight once for several sequences.
			v.mulBatch(tile, x[:n*t.cols], acts[:n])
		} else {
			// float32 where MatMat's value for a vector depends on the
			// batch (NEON: its tiles sum in another order than the
			// matrix-vector kernel that takes the leftover vectors), and
			// rows that cut a quantization group: the matrix-vector
			// kernel for each sequence (a row's value does not depend on
			// the rows it is computed with).
			for i := range n {
				t.mulRows(tile[i*m:(i+1)*m], a, &acts[i])
			}
		}
		for i := range n {
			copy(out[i*stride+base+a:i*stride+base+e], tile[i*m:(i+1)*m])
		}
	}
}

// decodeBlockBytes bounds the weights of a block of rows that every
// sequence of a step multiplies before the next block is read: half of a
// 1 MiB L2.
const decodeBlockBytes = 512 << 10

// rowsView returns rows [r0, r1) of t as a tensor of their own, or false
// when t's quantization groups do not start and end there.
func (t *tensor) rowsView(r0, r1 int) (tensor, bool) {
	n := t.cols
	v := tensor{rows: r1 - r0, cols: n}
	switch {
	case t.f != nil:
		v.f = t.f[r0*n : r1*n]
	case t.q != nil:
		if (r0*n)%t.gs != 0 || (r1*n)%t.gs != 0 {
			return v, false
		}
		v.q, v.s, v.gs = t.q[r0*n:r1*n], t.s[r0*n/t.gs:r1*n/t.gs], t.gs
	case t.h != nil:
		v.h, v.bf16 = t.h[r0*n:r1*n], t.bf16
	default:
		if t.blk.Resident && (r0%kernels.ResidentRows != 0 || r1%kernels.ResidentRows != 0) {
			return v, false
		}
		v.b, v.blk, v.rowBytes = t.b[r0*t.rowBytes:r1*t.rowBytes], t.blk, t.rowBytes
	}
	return v, true
}

func (b *Batch) qkvRows(lo, hi int) {
	lw := &b.m.w.layers[b.layer]
	dim, kvDim := b.cfg.Dim, b.cfg.KVDim()
	stride := dim + 2*kvDim
	b.rows(b.qkv, stride, &lw.wq, 0, lo, hi, b.xb, b.xbIn)
	b.rows(b.qkv, stride, &lw.wk, dim, lo, hi, b.xb, b.xbIn)
	b.rows(b.qkv, stride, &lw.wv, dim+kvDim, lo, hi, b.xb, b.xbIn)
}

// attention computes the (sequence, head) pairs [lo, hi), numbered
// sequence by sequence, each over its own session's cache: a sequence's
// heads in the range together, so that its KV groups are read once.
func (b *Batch) attention(lo, hi int) {
	c := &b.cfg
	dim, stride := c.Dim, c.Dim+2*c.KVDim()
	for p := lo; p < hi; {
		i, h := p/c.Heads, p%c.Heads
		h1 := min(c.Heads, h+hi-p)
		e := b.entries[i]
		e.Session.attendHeads(b.qkv[i*stride:i*stride+dim], b.xb[i*dim:(i+1)*dim], e.Pos, h, h1)
		p += h1 - h
	}
}

func (b *Batch) woRows(lo, hi int) {
	b.rows(b.xb2, b.cfg.Dim, &b.m.w.layers[b.layer].wo, 0, lo, hi, b.xb, b.xbIn)
}

func (b *Batch) ffnUpRows(lo, hi int) {
	lw := &b.m.w.layers[b.layer]
	hidden := b.cfg.HiddenDim
	b.rows(b.hb, hidden, &lw.w1, 0, lo, hi, b.xb, b.xbIn)
	b.rows(b.hb2, hidden, &lw.w3, 0, lo, hi, b.xb, b.xbIn)
	for i := range b.n {
		swiglu(b.hb[i*hidden+lo:i*hidden+hi], b.hb2[i*hidden+lo:i*hidden+hi])
	}
}

func (b *Batch) w2Rows(lo, hi int) {
	b.rows(b.xb, b.cfg.Dim, &b.m.w.layers[b.layer].w2, 0, lo, hi, b.hb, b.hbIn)
}

func (b *Batch) classifierRows(lo, hi int) {
	b.rows(b.logits, b.cfg.VocabSize, &b.m.w.classifier, 0, lo, hi, b.x, b.xIn)
}
