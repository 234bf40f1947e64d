package model

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// pool runs data-parallel loops on a fixed set of goroutines started once.
//
// A forward pass calls run tens of times per token at up to ~1000 tokens/s,
// so handing out work must cost well under a microsecond. Workers therefore
// spin on an atomic job word for a short while after each job (the next
// matmul usually follows within microseconds) and only then park on a
// channel, so that an idle pool costs no CPU.
//
// run may be called from several goroutines; calls are serialized. body must
// not call run on the same pool.
type pool struct {
	// The job line: written by run, read by every worker. The job word is
	// generation<<jobShift | chunks; workers with index < chunks-1 take
	// part, the others only note the new generation. Keeping the job's
	// fields on the same cache line as the word means a worker that sees a
	// new generation has the fields too, without a second miss.
	job           atomic.Uint64
	body          func(lo, hi int)
	total, grain  int
	units, chunks int
	_             [64 - 8 - 8 - 4*8]byte

	// waiter is workerParked while the caller sleeps on done.
	waiter atomic.Int32
	_      [60]byte

	n       int           // threads, including the caller
	done    chan struct{} // wakes a parked caller; buffered 1
	workers []poolWorker
	mu      sync.Mutex // serializes run and close
	closed  bool
	wg      sync.WaitGroup
	// Round the size up to the 256-byte allocation size class, whose
	// objects are 256-byte aligned, so the job line really is one line.
	_ [56]byte
}

// poolWorker is one worker's state, alone on its cache line: the worker
// writes it (finished generation, parking) and the caller reads it, with no
// other worker's traffic on the same line.
type poolWorker struct {
	finished atomic.Uint64 // generation of the last job this worker finished
	state    atomic.Int32  // workerRunning or workerParked
	wake     chan struct{} // buffered 1; a token means "look at job again"
	_        [64 - 8 - 4 - 4 - 8]byte
}

const (
	workerRunning = 0
	workerParked  = 1

	jobShift  = 16
	jobChunks = 1<<jobShift - 1
	// jobClosed is the chunks value that tells workers to exit.
	jobClosed = jobChunks

	// spinFor is how long a worker (or the waiting caller) polls before
	// parking. Long enough to bridge the gaps between the matmuls of one
	// token, short enough that an idle pool goes quiet almost at once.
	spinFor = 50 * time.Microsecond
	// spinYieldAfter is when spinning starts to yield the processor.
	spinYieldAfter = 5 * time.Microsecond
	// spinCheck is how many polls pass between looks at the clock.
	spinCheck = 64
)

// newPool starts threads-1 worker goroutines; the goroutine calling run is
// the last worker. threads < 1 is treated as 1.
func newPool(threads int) *pool {
	threads = max(1, min(threads, jobChunks-1))
	p := &pool{n: threads, done: make(chan struct{}, 1)}
	p.workers = make([]poolWorker, threads-1)
	for i := range p.workers {
		p.workers[i].wake = make(chan struct{}, 1)
	}
	p.wg.Add(len(p.workers))
	for i := range p.workers {
		go p.work(i)
	}
	return p
}

// threads returns the number of goroutines run uses, the caller included.
func (p *pool) threads() int { return p.n }

// close stops the workers and waits for them to exit. It is idempotent; run
// still works afterwards, serially on the caller.
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.publish(jobClosed)
	for i := range p.workers {
		p.wakeWorker(i)
	}
	p.wg.Wait()
}

// run splits [0, n) into at most threads() contiguous chunks whose
// boundaries are multiples of grain (except the end), calls body(lo, hi) for
// each chunk on the workers and the calling goroutine, and returns when all
// are done. It does not allocate.
func (p *pool) run(n, grain int, body func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	units := (n + grain - 1) / grain
	chunks := min(units, p.n)
	if chunks == 1 {
		body(0, n)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		body(0, n)
		return
	}
	p.body, p.total, p.grain, p.units, p.chunks = body, n, grain, units, chunks
	gen := p.publish(uint64(chunks))
	for i := 0; i < chunks-1; i++ {
		p.wakeWorker(i)
	}

	lo, hi := p.chunk(chunks - 1) // the caller takes the last chunk
	body(lo, hi)

	p.wait(gen, chunks-1)
	p.body = nil // do not keep the closure's captures alive
}

// publish starts the next generation of the job word with the given chunks
// and returns the generation.
func (p *pool) publish(chunks uint64) uint64 {
	gen := p.job.Load()>>jobShift + 1
	p.job.Store(gen<<jobShift | chunks)
	return gen
}

// wakeWorker hands worker i a wake-up token if it is parked. The CAS decides
// the race with a worker that is just parking: exactly one of the two flips
// the state back to running, and only the caller's flip sends a token.
// (Sequentially consistent atomics make the handshake sound: the worker
// stores parked and then loads job, the caller stores job and then loads
// state, so at least one of them sees the other's store.)
func (p *pool) wakeWorker(i int) {
	w := &p.workers[i]
	if w.state.Load() == workerParked && w.state.CompareAndSwap(workerParked, workerRunning) {
		w.wake <- struct{}{}
	}
}

// chunk returns the bounds of chunk c of the current job: units of grain
// spread as evenly as possible, the first units%chunks chunks one unit larger.
func (p *pool) chunk(c int) (lo, hi int) {
	per, extra := p.units/p.chunks, p.units%p.chunks
	start := c*per + min(c, extra)
	end := start + per
	if c < extra {
		end++
	}
	return min(start*p.grain, p.total), min(end*p.grain, p.total)
}

// wait returns when workers 0..k-1 have finished generation gen: it spins
// first, then parks on done with the same handshake as the workers.
func (p *pool) wait(gen uint64, k int) {
	allDone := func() bool {
		for i := range k {
			if p.workers[i].finished.Load() != gen {
				return false
			}
		}
		return true
	}
	for !spinUntil(allDone) {
		p.waiter.Store(workerParked)
		if allDone() && p.waiter.CompareAndSwap(workerParked, workerRunning) {
			return
		}
		// Some worker claimed the wake-up (maybe not the last one to
		// finish): take its token and look again.
		<-p.done
	}
}

func (p *pool) work(i int) {
	defer p.wg.Done()
	w := &p.workers[i]
	var seen uint64 // generation 0: the pool as newPool made it
	for {
		job := p.awaitJob(w, seen)
		seen = job >> jobShift
		chunks := int(job & jobChunks)
		if chunks == jobClosed {
			return
		}
		if i < chunks-1 {
			lo, hi := p.chunk(i)
			p.body(lo, hi)
			w.finished.Store(seen)
			if p.waiter.Load() == workerParked && p.waiter.CompareAndSwap(workerParked, workerRunning) {
				p.done <- struct{}{}
			}
		}
	}
}

// awaitJob returns the job word once its generation differs from seen.
func (p *pool) awaitJob(w *poolWorker, seen uint64) uint64 {
	for {
		var job uint64
		if spinUntil(func() bool { job = p.job.Load(); return job>>jobShift != seen }) {
			return job
		}
		// Park. Announce it first, then look once more: either we see the
		// new job, or the publisher sees us parked and sends a token.
		w.state.Store(workerParked)
		if job = p.job.Load(); job>>jobShift != seen {
			if w.state.CompareAndSwap(workerParked, workerRunning) {
				return job
			}
			// The publisher already claimed us; its token is on the way.
		}
		<-w.wake
		if job = p.job.Load(); job>>jobShift != seen {
			return job
		}
	}
}

// spinUntil polls cond for about spinFor and reports whether it became true.
func spinUntil(cond func() bool) bool {
	var start time.Time
	for i := 1; ; i++ {
		if cond() {
			return true
		}
		if i%spinCheck == 0 {
			if start.IsZero() {
				start = time.Now()
				continue
			}
			spun := time.Since(start)
			if spun > spinFor {
				return false
			}
			// After a short while, let other goroutines have this P now
			// and then: with more threads than free cores, the goroutine
			// we wait for may need it.
			if spun > spinYieldAfter {
				runtime.Gosched()
			}
		}
	}
}
