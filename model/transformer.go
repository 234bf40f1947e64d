package model

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/gguf"
	"github.com/llama2-go/llama2/internal/kernels"
	"github.com/llama2-go/llama2/tokenizer"
)

// Model is an opened checkpoint: its header and read-only weight views into
// the file's memory mapping. It is safe for concurrent use by any number of
// sessions; Close it only after every session is done.
type Model struct {
	Config Config
	path   string
	w      weights
	gguf   *ggufModel // nil for llama2.c checkpoints
	unmap  func() error
	once   sync.Once

	// shared is the reference-counted mapping (errors.go): the model holds
	// one reference until Close, every session one until its Close.
	shared  *mapping
	refOnce sync.Once
	closed  atomic.Bool

	tmplOnce sync.Once // ChatPrompt parses the chat template once
	tmpl     *chat.Template
	tmplErr  error
}

// Open opens the checkpoint at path with the default options and validates
// it: OpenWith(path, OpenOptions{}). It reads llama2.c's legacy (v0),
// version 1 and version 2 files, and GGUF files (told by their magic) of
// the architectures [ArchitectureNames] lists.
func Open(path string) (*Model, error) {
	return OpenWith(path, OpenOptions{})
}

// OpenWith opens the checkpoint at path, its weights mapped or read into
// memory as opts say, and validates it. Weights are views into that memory,
// never copies.
func OpenWith(path string, opts OpenOptions) (*Model, error) {
	data, release, err := loadFile(path, opts)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, unwrapPath(err))
	}
	m := &Model{path: path, unmap: release}
	if gguf.IsGGUF(data) {
		m.Config, m.w, m.gguf, err = parseGGUF(data, path)
	} else {
		m.Config, m.w, err = parseCheckpoint(data, path)
	}
	if err != nil {
		release()
		return nil, err
	}
	return m, nil
}

// unwrapPath drops the *os.PathError wrapper, whose path the caller's message
// already names.
func unwrapPath(err error) error {
	var pe interface{ Unwrap() error }
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		return fmt.Errorf("%w", pe.Unwrap())
	}
	return err
}

// StreamedBytesPerToken is the number of weight bytes one forward pass reads:
// every tensor once, except that only one row of the token embedding table is
// read unless it doubles as the classifier. It bounds generation speed by
// memory bandwidth.
func (m *Model) StreamedBytesPerToken() int64 {
	w := &m.w
	n := 4 * int64(len(w.rmsFinal)+2*len(w.layers)*m.Config.Dim)
	for l := range w.layers {
		lw := &w.layers[l]
		for _, t := range []*tensor{&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w1, &lw.w2, &lw.w3} {
			n += t.bytes()
		}
	}
	n += w.classifier.bytes()
	if !m.Config.SharedClassifier {
		n += w.tokenEmbedding.bytes() / int64(max(w.tokenEmbedding.rows, 1))
	}
	return n
}

// Format names the weights' format and the file's version; for GGUF, the
// tensor types and how many tensors have each, and which types' matrices
// were repacked into panels when read (resident.go).
func (m *Model) Format() string {
	if gs := m.Config.GroupSize; gs > 0 {
		return fmt.Sprintf("Q8_0 g%d (v%d)", gs, m.Config.Version)
	}
	if m.gguf != nil {
		if m.gguf.resident != "" {
			return fmt.Sprintf("GGUF v%d (%s; %s in panels)", m.Config.Version, m.gguf.typeMix, m.gguf.resident)
		}
		return fmt.Sprintf("GGUF v%d (%s)", m.Config.Version, m.gguf.typeMix)
	}
	return fmt.Sprintf("fp32 (v%d)", m.Config.Version)
}

// Tokenizer returns the vocabulary stored in a GGUF file, or nil for
// llama2.c checkpoints, whose tokenizer is a separate file
// ([tokenizer.Load]), for a GGUF file without one, and for a vocabulary
// this build does not read ([Model.TokenizerError] says why).
func (m *Model) Tokenizer() *tokenizer.Tokenizer {
	if m.gguf == nil {
		return nil
	}
	return m.gguf.tok
}

// TokenizerError reports why [Model.Tokenizer] is nil for a GGUF file
// that holds a vocabulary this build does not read (its
// tokenizer.ggml.model): an error naming the file and wrapping
// [errors.ErrUnsupported]. The model still runs on token ids. It is nil
// when the tokenizer was read, when the file has no vocabulary, and for
// llama2.c checkpoints.
func (m *Model) TokenizerError() error {
	if m.gguf == nil {
		return nil
	}
	return m.gguf.tokErr
}

// Architecture is the model's GGUF architecture (general.architecture:
// one of [ArchitectureNames]), or "llama" for llama2.c checkpoints.
func (m *Model) Architecture() string {
	if m.gguf == nil {
		return "llama"
	}
	return m.gguf.arch
}

// ChatTemplate returns the file's chat template (GGUF's
// tokenizer.chat_template, a Jinja template; see package chat), or "" when
// the file has none.
func (m *Model) ChatTemplate() string {
	if m.gguf == nil {
		return ""
	}
	return m.gguf.chatTemplate
}

// EOS returns the model's end-of-sequence token (GGUF's
// tokenizer.ggml.eos_token_id), or -1 for llama2.c checkpoints, which
// stop only at a sampled BOS as run.c does.
func (m *Model) EOS() int {
	if m.gguf == nil {
		return -1
	}
	return m.gguf.eos
}

// stops reports whether sampling token ends a generation: BOS (run.c's
// rule: a new sequence begins), and a GGUF model's EOS and every other
// end-of-generation token of its vocabulary (tokenizer.Tokenizer.IsEOG:
// <|eot_id|>, <|im_end|>, ...).
func (m *Model) stops(token int) bool {
	if g := m.gguf; g != nil {
		return token == g.eos || token == g.bos || (g.tok != nil && g.tok.IsEOG(token))
	}
	return token == tokenizer.BOS
}

// Path is the file the model was opened from.
func (m *Model) Path() string { return m.path }

// Close releases the model: NewSession then fails with [ErrClosed]. The
// file is unmapped once the model and every session made from it are
// closed, so sessions still running keep their weights.
func (m *Model) Close() error {
	var err error
	m.once.Do(func() {
		m.closed.Store(true)
		err = m.mapRefs().release()
	})
	return err
}

// SessionOptions configures a new session. The zero value is the default.
type SessionOptions struct {
	// Threads is the number of cores a forward pass uses; 0 means all of
	// the machine's cores.
	Threads int
	// Batch is the number of prompt tokens [Session.Prefill] pushes through
	// the model together; 0 means DefaultBatch and 1 turns batching off.
	Batch int
	// KeyCache and ValueCache are the element types of the cached keys
	// and values; the zero value is float32 ([KVType]).
	KeyCache, ValueCache KVType
}

// DefaultBatch is the default prompt batch: large enough that each weight
// fetched from memory serves many tokens, small enough that a batch's
// activations stay in cache.
const DefaultBatch = 128

// Session is the mutable state of one sequence over a shared Model: the KV
// cache and the activations of a forward pass. A session is used by one
// goroutine at a time: a call made while another is running on it (or
// while a [Sequence] runs on it, for calls other than the sequence's own)
// fails with [ErrBusy]. Close it when done; a session that is dropped
// without Close stops its worker goroutines and releases the model's
// mapping once the garbage collector finds it unreachable.
type Session struct {
	m     *Model
	cfg   Config
	eps   float32 // the RMS norms' epsilon
	pool  *pool
	batch *batchState // nil when batching is off

	x      []float32 // (dim) residual stream
	xb     []float32 // (dim) normalised input of a sub-block, then attention output
	xb2    []float32 // (dim) sub-block output before the residual add
	hb     []float32 // (hidden) w1 output, then SwiGLU output
	hb2    []float32 // (hidden) w3 output
	q      []float32 // (dim) query of the current position
	att    scores    // (heads, positions) attention scores
	logits []float32 // (vocab)

	// The inputs of the weight products, with their int8 form for Q8_0
	// models: xb (q/k/v, wo, w1/w3), hb (w2) and x (classifier).
	xbIn, hbIn, xIn activation

	keys, values kvCache // (layer, seq_len, kv_dim)
	// kNow, vNow are the current position's key and value rows of the
	// current layer: the caches' own for float32 ones, else kNew, vNew
	// (kv_dim), which kvPut converts into the caches.
	kNow, vNow, kNew, vNew []float32

	ropeCos []float32 // (head_size/2) cos(pos * freq) for the current position
	ropeSin []float32 // (head_size/2)

	// Arguments of the current step, read by the parallel bodies below.
	layer int
	pos   int

	// cached holds the tokens whose keys and values are in the cache, at
	// positions 0..len(cached)-1 (a prefix of what was fed): Forward and
	// Prefill cut it at the position they write, the sequences of
	// stream.go extend it.
	cached  []int
	running atomic.Bool // a Sequence is using the session
	closed  atomic.Bool
	endOnce sync.Once
	step    *Batch // a batch of one for Session.Tokens, made when first needed

	// busy is held by the call running on the session (enter, exit).
	busy atomic.Bool
	// filled is the number of positions whose keys and values are in the
	// cache (0..filled-1): the next call may feed filled or any position
	// before it, never one after.
	filled int
	// cleanup stops the pool and releases the mapping of a session that
	// is dropped without Close.
	cleanup runtime.Cleanup

	// Bodies handed to the pool, bound once so dispatching allocates nothing.
	qkvBody, attnBody, woBody, ffnUpBody, w2Body, classifierBody func(lo, hi int)

	// planner runs float32 products with stealing (steal.go); nil with one
	// thread, or where kernels.MatVec's row values depend on the split.
	planner *planner
}

// rowGrain is the number of output rows a worker takes at a time: 16 floats
// fill a 64-byte cache line, so workers never write to the same line.
const rowGrain = 16

// NewSession allocates a session's KV cache and activations.
func (m *Model) NewSession(opts SessionOptions) (*Session, error) {
	c := m.Config
	if opts.Threads < 0 {
		return nil, fmt.Errorf("threads %d must not be negative", opts.Threads)
	}
	if opts.Batch < 0 {
		return nil, fmt.Errorf("batch %d must not be negative", opts.Batch)
	}
	for _, t := range []KVType{opts.KeyCache, opts.ValueCache} {
		if err := t.check(&c); err != nil {
			return nil, fmt.Errorf("new session: %w", err)
		}
	}
	if m.closed.Load() {
		return nil, fmt.Errorf("new session: model %s: %w", m.path, ErrClosed)
	}
	if err := m.mapRefs().acquire(); err != nil {
		return nil, fmt.Errorf("new session: model %s: %w", m.path, err)
	}
	threads := opts.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	s := &Session{
		m: m, cfg: c, pool: newPool(threads), eps: c.normEps(),
		x: make([]float32, c.Dim), xb: make([]float32, c.Dim), xb2: make([]float32, c.Dim),
		hb: make([]float32, c.HiddenDim), hb2: make([]float32, c.HiddenDim),
		q: make([]float32, c.Dim), att: newScores(c.Heads, c.SeqLen),
		logits: make([]float32, c.VocabSize),
		keys:   newKVCache(opts.KeyCache, &c), values: newKVCache(opts.ValueCache, &c),
		kNew: make([]float32, c.KVDim()), vNew: make([]float32, c.KVDim()),
		ropeCos: make([]float32, c.HeadSize()/2), ropeSin: make([]float32, c.HeadSize()/2),
	}
	s.qkvBody, s.attnBody, s.woBody = s.qkv, s.attention, s.wo
	s.ffnUpBody, s.w2Body, s.classifierBody = s.ffnUp, s.w2, s.classify
	s.planner = newPlanner(s.pool)
	xbForm, hbForm, xForm := m.w.actForms()
	s.xbIn = newActivation(s.xb, xbForm)
	s.hbIn = newActivation(s.hb, hbForm)
	s.xIn = newActivation(s.x, xForm)
	if batch := cmp.Or(opts.Batch, DefaultBatch); batch > 1 {
		s.batch = newBatchState(s, min(batch, c.SeqLen))
	}
	// The workers reference the pool, never the session, so an unclosed
	// session can become unreachable: then its workers stop.
	s.cleanup = runtime.AddCleanup(s, func(r sessionResources) {
		r.pool.close()
		r.mapping.release()
	}, sessionResources{s.pool, m.mapRefs()})
	return s, nil
}

// sessionResources is what a session holds outside itself.
type sessionResources struct {
	pool    *pool
	mapping *mapping
}

// Close stops the session's worker goroutines and releases its reference
// to the model's mapping. Using the session afterwards fails with
// [ErrClosed]. A call still running on the session (from another
// goroutine) keeps them until it returns.
func (s *Session) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.cleanup.Stop()
	if s.busy.CompareAndSwap(false, true) {
		s.release()
	} // else the running call releases them in exit
}

// release stops the workers and releases the mapping, once.
func (s *Session) release() {
	s.endOnce.Do(func() {
		s.pool.close()
		if s.step != nil {
			s.step.Close()
		}
		s.m.mapRefs().release()
	})
}

// Errors of a session in use.
var (
	errSessionBusy     = fmt.Errorf("session: another call is running on it: %w", ErrBusy)
	errSequenceRunning = fmt.Errorf("session: a sequence is running on it (Cancel it, or let it end): %w", ErrBusy)
)

// enter marks the session in use by the calling goroutine until exit: a
// call from another goroutine meanwhile fails with ErrBusy instead of
// mixing its cache and activations with this one's, and so does any call
// but a running sequence's own (forSequence) while a sequence runs on the
// session. One CompareAndSwap, next to a forward pass of microseconds at
// the least.
func (s *Session) enter(forSequence bool) error {
	if s.closed.Load() {
		return errSessionClosed
	}
	if !s.busy.CompareAndSwap(false, true) {
		return errSessionBusy
	}
	if !forSequence && s.running.Load() {
		s.exit()
		return errSequenceRunning
	}
	return nil
}

// exit ends what enter began; when Close came meanwhile, it releases the
// session's resources.
func (s *Session) exit() {
	s.busy.Store(false)
	if s.closed.Load() && s.busy.CompareAndSwap(false, true) {
		s.release()
	}
}

// follows checks that feeding positions from pos on leaves no hole in the
// cache: pos may be the next position or one before it (going back drops
// the positions after). Positions outside the context are left to the
// callee's checks, which name them.
func (s *Session) follows(pos int) error {
	if pos > s.filled && pos < s.cfg.SeqLen {
		return fmt.Errorf("position %d skips positions: the cache holds %d positions: %w", pos, s.filled, ErrPositionGap)
	}
	return nil
}

// Model is the model the session runs.
func (s *Session) Model() *Model { return s.m }

// Forward feeds token at position pos and returns the logits for the next
// token. The slice is owned by the session and valid until its next call.
// Positions must be fed in order from 0 (the KV cache holds 0..pos-1):
// pos may be the next position, or an earlier one, which drops the
// positions after it; skipping one is an error ([ErrPositionGap]).
func (s *Session) Forward(token, pos int) ([]float32, error) {
	if err := s.enter(false); err != nil {
		return nil, err
	}
	defer s.exit()
	if err := s.follows(pos); err != nil {
		return nil, err
	}
	logits, err := s.forward(token, pos)
	if err == nil {
		s.filled = pos + 1
	}
	return logits, err
}

// forward is Forward for a caller that holds the session.
func (s *Session) forward(token, pos int) ([]float32, error) {
	c := &s.cfg
	if token < 0 || token >= c.VocabSize {
		return nil, errToken(token, c.VocabSize)
	}
	if pos < 0 || pos >= c.SeqLen {
		return nil, errPosition(pos, c.SeqLen)
	}
	if s.closed.Load() {
		return nil, errSessionClosed
	}
	s.cached = s.cached[:min(len(s.cached), pos)]
	w := &s.m.w
	w.tokenEmbedding.rowTo(s.x, token)
	s.pos = pos
	w.rope.angles(s.ropeCos, s.ropeSin, pos)
	for l := range w.layers {
		s.layer = l
		lw := &w.layers[l]
		rmsnorm(s.xb, s.x, lw.rmsAtt, s.eps)
		s.xbIn.quantize()
		k, v := s.kvRow(l, pos)
		if !s.planner.run(s.xb, product{s.q, &lw.wq}, product{k, &lw.wk}, product{v, &lw.wv}) {
			s.pool.run(c.Dim+2*c.KVDim(), rowGrain, s.qkvBody)
		}
		lw.qkvEnd(s.q, k, v, &w.rope, s.ropeCos, s.ropeSin, c.HeadSize())
		s.kvPut(l, pos, k, v)
		s.att.reserve(pos + 1)
		s.pool.run(c.Heads, attnGrain(c, s.pool.threads()), s.attnBody)
		s.xbIn.quantize()
		if !s.planner.run(s.xb, product{s.xb2, &lw.wo}) {
			s.pool.run(c.Dim, rowGrain, s.woBody)
		}
		addBias(s.xb2, lw.bo)
		addInPlace(s.x, s.xb2)
		rmsnorm(s.xb, s.x, lw.rmsFFN, s.eps)
		s.xbIn.quantize()
		if s.planner.run(s.xb, product{s.hb, &lw.w1}, product{s.hb2, &lw.w3}) {
			swiglu(s.hb, s.hb2)
		} else {
			s.pool.run(c.HiddenDim, rowGrain, s.ffnUpBody)
		}
		s.hbIn.quantize()
		if !s.planner.run(s.hb, product{s.xb, &lw.w2}) {
			s.pool.run(c.Dim, rowGrain, s.w2Body)
		}
		addInPlace(s.x, s.xb)
	}
	return s.logitsAfter(s.x), nil
}

// logitsAfter computes the logits for the token after the one whose
// residual stream x is (s.x itself, or a row of a batch): the final rmsnorm
// into s.x, then the classifier.
func (s *Session) logitsAfter(x []float32) []float32 {
	rmsnorm(s.x, x, s.m.w.rmsFinal, s.eps)
	s.xIn.quantize()
	if !s.planner.run(s.x, product{s.logits, &s.m.w.classifier}) {
		s.pool.run(s.cfg.VocabSize, rowGrain, s.classifierBody)
	}
	return s.logits
}

func errToken(token, vocab int) error {
	return fmt.Errorf("token %d is outside the vocabulary [0, %d)", token, vocab)
}

func errPosition(pos, seqLen int) error {
	if pos >= seqLen {
		return fmt.Errorf("position %d is outside the context [0, %d): %w", pos, seqLen, ErrContextFull)
	}
	return fmt.Errorf("position %d is outside the context [0, %d)", pos, seqLen)
}

var errSessionClosed = fmt.Errorf("session: %w", ErrClosed)

// kvRow returns the rows that take the key and value of layer l at
// position pos (kvRow's rows of the caches), and makes them the current
// ones (kNow, vNow) for the products' bodies; kvPut stores them.
func (s *Session) kvRow(l, pos int) (k, v []float32) {
	s.kNow, s.vNow = s.keys.row(l, pos, 1, s.kNew), s.values.row(l, pos, 1, s.vNew)
	return s.kNow, s.vNow
}

// kvPut stores the key and value rows from kvRow into the caches.
func (s *Session) kvPut(l, pos int, k, v []float32) {
	s.keys.put(l, pos, k)
	s.values.put(l, pos, v)
}

// qkv computes rows [lo, hi) of the query, key and value projections, seen
// as one (dim + 2*kv_dim, dim) matrix so that one dispatch covers all three.
func (s *Session) qkv(lo, hi int) {
	lw := &s.m.w.layers[s.layer]
	dim, kvDim := s.cfg.Dim, s.cfg.KVDim()
	rowsOf(s.q, &lw.wq, &s.xbIn, 0, lo, hi)
	rowsOf(s.kNow, &lw.wk, &s.xbIn, dim, lo, hi)
	rowsOf(s.vNow, &lw.wv, &s.xbIn, dim+kvDim, lo, hi)
}

// rowsOf computes the part of rows [lo, hi) of a stacked product that falls
// into the tensor w, whose rows are numbered from base to base+w.rows.
func rowsOf(out []float32, w *tensor, x *activation, base, lo, hi int) {
	a, b := max(lo-base, 0), min(hi-base, w.rows)
	if a < b {
		w.mulRows(out[a:b], a, x)
	}
}

// qkvEnd finishes the query q, key k and value v of one token after
// their products: the layer's biases, then RoPE at the angles cos, sin.
// Every path (Forward, prompts, batched decoding) ends the products here,
// so they apply the same steps in the same order.
func (lw *layerWeights) qkvEnd(q, k, v []float32, rope *ropeTable, cos, sin []float32, hs int) {
	addBias(q, lw.bq)
	addBias(k, lw.bk)
	addBias(v, lw.bv)
	rope.rotate(q, cos, sin, hs)
	rope.rotate(k, cos, sin, hs)
}

// addBias adds bias to x, when there is one (nil: none).
func addBias(x, bias []float32) {
	if bias != nil {
		addInPlace(x, bias)
	}
}

func (s *Session) wo(lo, hi int) {
	s.m.w.layers[s.layer].wo.mulRows(s.xb2[lo:hi], lo, &s.xbIn)
}

// ffnUp computes rows [lo, hi) of w1 and w3 and their SwiGLU in one pass.
func (s *Session) ffnUp(lo, hi int) {
	lw := &s.m.w.layers[s.layer]
	lw.w1.mulRows(s.hb[lo:hi], lo, &s.xbIn)
	lw.w3.mulRows(s.hb2[lo:hi], lo, &s.xbIn)
	swiglu(s.hb[lo:hi], s.hb2[lo:hi])
}

func (s *Session) w2(lo, hi int) {
	s.m.w.layers[s.layer].w2.mulRows(s.xb[lo:hi], lo, &s.hbIn)
}

func (s *Session) classify(lo, hi int) {
	s.m.w.classifier.mulRows(s.logits[lo:hi], lo, &s.xIn)
}

// rmsnorm sets out = weight * (x / rms(x)), run.c's order of operations;
// eps is added to the mean square (run.c: 1e-5).
func rmsnorm(out, x, weight []float32, eps float32) {
	ss := kernels.Dot(x, x)
	ss /= float32(len(x))
	ss += eps
	ss = 1 / float32(math.Sqrt(float64(ss)))
	kernels.ScaleMul(out, weight, x, ss)
}

// swiglu sets hb[i] = silu(hb[i]) * hb2[i].
func swiglu(hb, hb2 []float32) { kernels.SiluMul(hb, hb2) }

func addInPlace(x, y []float32) {
	y = y[:len(x)]
	for i := range x {
		x[i] += y[i]
	}
}
