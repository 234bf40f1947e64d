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
// spin on an atomic word for a short while after each job (the next matmul
// usually follows within microseconds) and only then park on a channel, so
// that an idle pool costs no CPU. The caller waiting for the workers does
// the same.
//
// run may be called from several goroutines; calls are serialized. body must
// not call run on the same pool.
//
// # Protocol
//
// Every decision to sleep or to wake someone is a read-modify-write on a
// single word, never "store one word, then load another". Read-modify-writes
// on one word are totally ordered on every memory model (and under
// emulators, which may not keep a store before a later load of a different
// address: qemu-user on x86 hosts lets arm64's STLR-then-LDAR pass each
// other, which made the earlier Dekker-style handshake lose wake-ups). There
// are two kinds of word:
//
// Worker i's ctl word, gen<<ctlShift | ctlExit? | ctlParked?, on the
// worker's own cache line. Only the caller changes gen (and sets ctlExit),
// always with one Swap that also clears ctlParked; only the worker sets
// ctlParked, with a CompareAndSwap from the value it last saw (so only while
// gen is still the one it has finished). Of a Swap and a parking CAS on the
// same word, one comes first: if the CAS does, the Swap returns the parked
// bit and the caller sends one token on the worker's wake channel; if the
// Swap does, the CAS fails and the worker sees the new gen. So a worker
// never sleeps through a job, and each token matches one parking.
//
// The pending word, pendingCount workers still running | callerParked?,
// on its own line. The caller stores the number of workers taking part
// before it hands out the job; each worker decrements it once when its chunk
// is done. The caller sets callerParked with a CompareAndSwap, and only
// while the count is not zero. The decrement that brings the count to zero
// returns exactly callerParked if the caller parked before it (and then
// sends the one token on done), and 0 otherwise, in which case the caller's
// next CAS fails and it sees 0. So the caller never sleeps through the last
// finisher either.
//
// The atomics also order the data: the job's fields are written before the
// Swap that a worker's load or CAS observes, and each chunk's writes come
// before its worker's decrement, which the caller observes (directly, or
// through the chain of decrements and the token) before run returns.
type pool struct {
	// The job line: written by run, read by the workers it wakes, so a
	// worker that sees its ctl change reads them in one more miss.
	body          func(lo, hi int)
	total, grain  int
	units, chunks int
	gen           uint64 // generation of the last job handed out (under mu)
	_             [64 - 8 - 4*8 - 8]byte

	// pending: see the protocol above.
	pending atomic.Uint32
	_       [60]byte

	n       int           // threads, including the caller
	done    chan struct{} // wakes a parked caller; buffered 1
	workers []poolWorker
	mu      sync.Mutex // serializes run and close
	closed  bool
	wg      sync.WaitGroup
	// Round the size up to the 256-byte allocation size class, whose
	// objects are 256-byte aligned, so each line above really is one line.
	_ [56]byte
}

// poolWorker is one worker's state, alone on its cache line: the worker
// spins on ctl, and only the caller writes to it, once per job.
type poolWorker struct {
	ctl  atomic.Uint64 // gen<<ctlShift | ctlExit | ctlParked
	wake chan struct{} // buffered 1; a token means "ctl has changed"
	_    [64 - 8 - 8]byte
}

const (
	ctlParked = 1 << 0 // the worker sleeps on wake (set by the worker)
	ctlExit   = 1 << 1 // the pool is closed: return (set by the caller)
	ctlShift  = 2

	callerParked = 1 << 31 // the caller sleeps on done
	pendingCount = callerParked - 1

	// spinFor is how long a worker (or the waiting caller) polls before
	// parking. Long enough to bridge the gaps between the matmuls of one
	// token, short enough that an idle pool goes quiet almost at once.
	//
	// A worker that finishes its chunk more than spinFor before the caller
	// finishes its own parks, and a parked worker starts its next chunk
	// late (the wake-up goes through the scheduler and a futex). With 50 µs
	// that happened often enough at 2 threads, on the 2-core Zen 5 VM, that
	// the worker started its chunks, on average, 9-11% of the token's time
	// after the caller handed them out, and the caller then waited 12-15%
	// of the time for it. With 200 µs the delay fell to 1.2-1.6% and
	// generation sped up: stories110M fp32 94-97 -> 101-107 tok/s,
	// TinyLlama Q4_K_M 66-67 -> 74 (one process per setting, alternated;
	// 500 µs to 2 ms gave nothing more). The caller still waits 5-8% of the
	// time for the worker; handing out 4 pieces per thread from an atomic
	// counter instead of one chunk each was slower (stories42M Q8_0 1230 ->
	// 990 tok/s, TinyLlama Q4_K_M 65 -> 61, 3 alternated runs): every
	// piece restarts the kernels' 4 streams. Nor did stealing only at the
	// end pay: each thread ran the head of its chunk, then the last 1/4
	// (or 1/8) of every chunk in 8 (or 3) pieces claimed from per-chunk
	// counters. It cut the caller's wait from 5-8% to 1-4% of the time,
	// but in 6 alternated runs of each (2 threads, tok/s ratio) TinyLlama
	// Q8_0 0.97 / 1.02, fp32 1.01 / 1.00, stories42M Q8_0 1.06 / 0.98,
	// stories110M fp32 1.03 / 1.01: the restarts cost what the wait saved.
	// (What pays is stealing that never restarts the owner's streams:
	// steal.go, for float32 weights.) Nor does a larger chunk for the
	// caller, to make up for the worker's late start: moving 1/64, 1/32
	// or 1/16 of the rows to it gave stories110M Q8_0 at 2 threads 1.01x,
	// 1.00x and 0.995x (6 rounds interleaved in one process).
	// Fewer runs do not help either: dispatching each layer's q/k/v rows
	// and attention by key/value head groups, one run instead of two
	// (65 -> 52 a token on stories110M), sped generation up by 0-2%
	// (two sessions interleaved in one process, 2 threads, stories110M and
	// 42M, fp32 and Q8_0), though the caller waited 11-17% of its time:
	// the wait grows with each run's work, not with the number of runs.
	// Nor did using the wait: the caller prefetching (PREFETCHT1) the heads
	// of its 4 streams in its chunk of the next product, 128 or 384 KiB,
	// until the worker finished, slowed stories110M Q8_0 at 2 threads in
	// each of 3 rounds (409 -> 360 / 403, 536 -> 480 / 451, 490 -> 424 /
	// 440 tok/s): it takes bandwidth from the worker, whose chunk is late.
	spinFor = 200 * time.Microsecond
	// spinYieldAfter is when spinning starts to yield the processor.
	spinYieldAfter = 5 * time.Microsecond
	// spinCheck is how many polls pass between looks at the clock.
	spinCheck = 64
)

// maxThreads bounds newPool's threads far below what pendingCount can count.
const maxThreads = 1 << 15

// newPool starts threads-1 worker goroutines; the goroutine calling run is
// the last worker. threads < 1 is treated as 1.
func newPool(threads int) *pool {
	threads = max(1, min(threads, maxThreads))
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
	p.gen++
	for i := range p.workers {
		p.notify(i, p.gen<<ctlShift|ctlExit)
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
	p.gen++
	// Workers 0..chunks-2 take part; the others keep waiting (their ctl
	// keeps an older generation, which is fine: they only compare it
	// with what they last saw).
	p.pending.Store(uint32(chunks - 1))
	for i := 0; i < chunks-1; i++ {
		p.notify(i, p.gen<<ctlShift)
	}

	lo, hi := p.chunk(chunks - 1) // the caller takes the last chunk
	body(lo, hi)

	p.wait()
	p.body = nil // do not keep the closure's captures alive
}

// notify sets worker i's ctl word to c (a new generation, not parked) and
// wakes the worker if it had parked: exactly one token per parking.
func (p *pool) notify(i int, c uint64) {
	w := &p.workers[i]
	if w.ctl.Swap(c)&ctlParked != 0 {
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

// wait returns when the workers of the current job have all finished: it
// spins on pending first, then parks on done.
func (p *pool) wait() {
	for {
		var v uint32
		if spinUntil(func() bool { v = p.pending.Load(); return v == 0 }) {
			return
		}
		// v has a nonzero count and no parked bit (only we set it). If a
		// worker finished since, the CAS fails and we look again.
		if p.pending.CompareAndSwap(v, v|callerParked) {
			<-p.done // sent by the decrement that reached zero
			return
		}
	}
}

// finish records that one worker's chunk is done, waking the caller if it
// parked and this was the last chunk.
func (p *pool) finish() {
	if p.pending.Add(^uint32(0)) == callerParked {
		p.done <- struct{}{}
	}
}

func (p *pool) work(i int) {
	defer p.wg.Done()
	w := &p.workers[i]
	var seen uint64 // generation 0: the pool as newPool made it
	for {
		c := p.awaitJob(w, seen)
		seen = c >> ctlShift
		if c&ctlExit != 0 {
			return
		}
		lo, hi := p.chunk(i)
		p.body(lo, hi)
		p.finish()
	}
}

// awaitJob returns worker w's ctl word once its generation differs from
// seen: spinning first, then parked on w.wake.
func (p *pool) awaitJob(w *poolWorker, seen uint64) uint64 {
	for {
		var c uint64
		if spinUntil(func() bool { c = w.ctl.Load(); return c>>ctlShift != seen }) {
			return c
		}
		// c is (seen, not parked). Park only if it still is: else the
		// CAS fails and the new job is read on the next pass.
		if w.ctl.CompareAndSwap(c, c|ctlParked) {
			<-w.wake // sent by the notify whose Swap cleared the bit
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
