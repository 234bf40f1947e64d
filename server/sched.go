package server

// Continuous batching: one goroutine owns the slots and the batch. Between
// two decode steps it takes in new requests, gives free slots to waiting
// ones (the slot whose cached tokens share the longest prefix with the
// prompt), prefills one chunk of one new prompt, and drops requests whose
// client went away; then one step advances every slot whose prompt is in.

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/sample"
)

// Job states: a handler and the scheduler race to claim a queued job (the
// handler to give up on it, the scheduler to run it).
const (
	jobQueued int32 = iota
	jobRunning
	jobAbandoned
)

// job is one generation request on its way through the scheduler.
type job struct {
	ctx    context.Context
	g      genParams
	state  atomic.Int32
	events chan event // buffered for every event the job can send: never blocks
	queued time.Time

	// Owned by the scheduler.
	slot    *slot
	seq     *model.Sequence
	started time.Time // when it got a slot
	first   time.Time // when its first token was sampled
	last    time.Time // when its last token was sampled
}

// event is what the scheduler tells a job's handler: it started, a piece of
// text (with the token that released it when logprobs are asked for), or
// the end (with the usage and the reason, or an error).
type event struct {
	kind   eventKind
	piece  piece
	usage  model.Usage
	reason model.StopReason
	err    error
}

// piece is a piece of text and, with logprobs, the sampled token it comes
// with (a token may release no text, or text held back earlier).
type piece struct {
	text []byte
	tok  *model.Token
}

type eventKind uint8

const (
	evStarted eventKind = iota
	evText
	evDone
)

// slot is a session the scheduler gives to one job at a time; its KV cache
// outlives the job for the next prompt with the same prefix.
type slot struct {
	sess    *model.Session
	history []int // the tokens in the cache
	job     *job
	used    time.Time
}

type scheduler struct {
	s     *Server
	batch *model.Batch
	slots []*slot
	jobs  chan *job
	quit  chan struct{}
	done  chan struct{}

	waiting []*job
	running []*job // holding a slot, in the order they got it
	seqs    []*model.Sequence
	ready   []*job
}

func newScheduler(s *Server) (*scheduler, error) {
	o := s.opts
	sc := &scheduler{s: s, jobs: make(chan *job, o.Parallel+o.Queue), quit: make(chan struct{}), done: make(chan struct{})}
	var err error
	if sc.batch, err = s.model.NewBatch(model.BatchOptions{Size: o.Parallel, Threads: o.Threads}); err != nil {
		return nil, err
	}
	for range o.Parallel {
		sess, err := s.model.NewSession(model.SessionOptions{Threads: o.Threads, Batch: o.Batch, KeyCache: o.KeyCache, ValueCache: o.ValueCache})
		if err != nil {
			sc.free()
			return nil, err
		}
		sc.slots = append(sc.slots, &slot{sess: sess})
	}
	go sc.loop()
	return sc, nil
}

func (sc *scheduler) free() {
	for _, sl := range sc.slots {
		sl.sess.Close()
	}
	sc.batch.Close()
}

// close stops the loop (cancelling the jobs it holds) and frees the slots.
func (sc *scheduler) close() {
	close(sc.quit)
	<-sc.done
	sc.free()
}

var errClosed = errors.New("the server is closed")

// submit hands a job to the scheduler; the caller holds an admission.
func (sc *scheduler) submit(j *job) error {
	select {
	case <-sc.quit:
		return errClosed
	default:
	}
	select {
	case sc.jobs <- j:
		return nil
	case <-sc.quit:
		return errClosed
	}
}

func (sc *scheduler) loop() {
	defer close(sc.done)
	for {
		if len(sc.running) == 0 && len(sc.waiting) == 0 {
			select {
			case j := <-sc.jobs:
				sc.waiting = append(sc.waiting, j)
			case <-sc.quit:
				sc.shutdown()
				return
			}
		}
		select {
		case <-sc.quit:
			sc.shutdown()
			return
		default:
		}
		sc.intake()
		sc.reap()
		sc.prefill()
		sc.step()
	}
}

// shutdown ends every job the scheduler holds.
func (sc *scheduler) shutdown() {
	for {
		select {
		case j := <-sc.jobs:
			sc.waiting = append(sc.waiting, j)
			continue
		default:
		}
		break
	}
	for _, j := range sc.waiting {
		if j.state.CompareAndSwap(jobQueued, jobRunning) {
			sc.fail(j, errClosed)
		}
	}
	sc.waiting = nil
	for _, j := range sc.running {
		j.seq.Cancel()
		sc.finish(j, errClosed)
	}
	sc.running = nil
}

// intake takes the submitted jobs and gives free slots to waiting ones, in
// order of arrival.
func (sc *scheduler) intake() {
	for {
		select {
		case j := <-sc.jobs:
			sc.waiting = append(sc.waiting, j)
			continue
		default:
		}
		break
	}
	kept := sc.waiting[:0]
	for _, j := range sc.waiting {
		if j.state.Load() == jobAbandoned {
			continue // its handler answered and released it
		}
		sl := sc.freeSlot(j.g.prompt)
		if sl == nil {
			kept = append(kept, j)
			continue
		}
		if !j.state.CompareAndSwap(jobQueued, jobRunning) {
			continue
		}
		sc.start(j, sl)
	}
	clear(sc.waiting[len(kept):])
	sc.waiting = kept
	sc.s.metrics.setQueue(len(sc.waiting), len(sc.running))
}

// freeSlot picks the free slot whose cached tokens share the longest prefix
// with prompt, the least recently used among equals; nil if none is free.
func (sc *scheduler) freeSlot(prompt []int) *slot {
	var best *slot
	bestLen := -1
	for _, sl := range sc.slots {
		if sl.job != nil {
			continue
		}
		n := commonPrefix(sl.history, prompt)
		if n > bestLen || (n == bestLen && sl.used.Before(best.used)) {
			best, bestLen = sl, n
		}
	}
	return best
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < min(len(a), len(b)) && a[n] == b[n] {
		n++
	}
	return n
}

func (sc *scheduler) start(j *job, sl *slot) {
	g := j.g
	sampler, err := sample.NewChain(sc.s.model.Config.VocabSize, g.sampling)
	if err != nil { // the handler checked the parameters
		sc.fail(j, err)
		return
	}
	seq, err := sl.sess.Start(g.prompt, model.GenerateOptions{
		MaxTokens:   g.maxTokens,
		Sampler:     sampler,
		Tokenizer:   sc.s.tok,
		Stop:        g.stop,
		Grammar:     g.grammar,
		Logprobs:    g.logprobs,
		TopLogprobs: g.topLogprobs,
	})
	if err != nil {
		sc.fail(j, err)
		return
	}
	sl.job, sl.used = j, time.Now()
	j.slot, j.seq, j.started = sl, seq, time.Now()
	sc.s.metrics.queueWait(j.started.Sub(j.queued))
	sc.running = append(sc.running, j)
	j.events <- event{kind: evStarted}
}

// prefill feeds one chunk's worth (Options.Batch tokens) of the prompts
// still being prefilled, oldest first: several short prompts, or one chunk
// of a long one.
func (sc *scheduler) prefill() {
	budget := sc.s.opts.Batch
	for i := 0; i < len(sc.running) && budget > 0; i++ {
		j := sc.running[i]
		n := min(j.seq.Pending(), budget)
		if n == 0 {
			continue
		}
		budget -= n
		pending, err := j.seq.Prefill(n)
		if err != nil {
			j.seq.Cancel()
			sc.finish(j, err) // removes running[i]
			i--
			continue
		}
		if sc.s.onPrefill != nil {
			sc.s.onPrefill(j.ctx, pending)
		}
	}
}

// reap ends the running jobs whose request's context is done (the client
// went away, the request timed out, or shutdown gave up on it).
func (sc *scheduler) reap() {
	for i := 0; i < len(sc.running); {
		j := sc.running[i]
		if err := j.ctx.Err(); err != nil {
			j.seq.Cancel()
			sc.finish(j, err) // removes running[i]
			continue
		}
		i++
	}
}

// step advances every job whose prompt is in by one token.
func (sc *scheduler) step() {
	sc.ready, sc.seqs = sc.ready[:0], sc.seqs[:0]
	for _, j := range sc.running {
		if j.seq.Ready() {
			sc.ready = append(sc.ready, j)
			sc.seqs = append(sc.seqs, j.seq)
		}
	}
	if len(sc.seqs) == 0 {
		return
	}
	begin := time.Now()
	if err := sc.batch.Step(sc.seqs); err != nil {
		for _, j := range sc.ready {
			j.seq.Cancel()
			sc.finish(j, err)
		}
		return
	}
	now := time.Now()
	sc.s.metrics.step(len(sc.seqs), now.Sub(begin))
	for _, j := range sc.ready {
		if sc.s.onToken != nil {
			sc.s.onToken(j.ctx)
		}
		tok := j.seq.Token()
		if j.first.IsZero() {
			j.first = now
			sc.s.metrics.ttft(now.Sub(j.queued))
		} else {
			sc.s.metrics.interToken(now.Sub(j.last))
		}
		j.last = now
		p := piece{text: tok.Text}
		if j.g.logprobs && tok.Stop != model.StopEnd { // the end token is not text
			p.tok = &tok
		}
		if len(p.text) > 0 || p.tok != nil {
			j.events <- event{kind: evText, piece: p}
		}
		if tok.Stop != model.NotStopped {
			sc.finish(j, nil)
		}
	}
}

// finish sends j's last event and frees its slot and admission.
func (sc *scheduler) finish(j *job, err error) {
	u := j.seq.Usage()
	j.events <- event{kind: evDone, usage: u, reason: j.seq.Reason(), err: err}
	sc.s.metrics.tokens(u)
	sl := j.slot
	sl.job, sl.used = nil, time.Now()
	sl.history = sl.sess.Cached()
	for i, r := range sc.running {
		if r == j {
			sc.running = append(sc.running[:i], sc.running[i+1:]...)
			break
		}
	}
	sc.s.metrics.setQueue(len(sc.waiting), len(sc.running))
	<-sc.s.admit
}

// fail ends a job that never got a slot going.
func (sc *scheduler) fail(j *job, err error) {
	j.events <- event{kind: evDone, err: err}
	<-sc.s.admit
}
