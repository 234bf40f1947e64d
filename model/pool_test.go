package model

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func TestPoolCoversEachIndexOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 4, 7} {
		p := newPool(threads)
		require.Equal(t, threads, p.threads())
		for _, n := range []int{0, 1, 2, 3, 5, 8, 13, 64, 100, 288, 1000} {
			for _, grain := range []int{0, 1, 2, 3, 4, 16, 100, 2000} {
				hits := make([]int32, n)
				var calls atomic.Int32
				p.run(n, grain, func(lo, hi int) {
					calls.Add(1)
					require.Less(t, lo, hi)
					if g := max(grain, 1); lo%g != 0 || (hi%g != 0 && hi != n) {
						t.Errorf("chunk [%d,%d) not on grain %d (n=%d)", lo, hi, g, n)
					}
					for i := lo; i < hi; i++ {
						atomic.AddInt32(&hits[i], 1)
					}
				})
				for i, h := range hits {
					if h != 1 {
						t.Fatalf("threads=%d n=%d grain=%d: index %d covered %d times", threads, n, grain, i, h)
					}
				}
				require.LessOrEqual(t, int(calls.Load()), threads)
			}
		}
		p.close()
	}
}

// TestPoolLayout checks the cache-line layout the dispatch latency relies on:
// the job fields share one line, pending has its own, and so has each worker.
func TestPoolLayout(t *testing.T) {
	require.Equal(t, uintptr(256), unsafe.Sizeof(pool{}), "pool must fill the 256-byte size class")
	require.Equal(t, uintptr(64), unsafe.Sizeof(poolWorker{}))
	require.Equal(t, uintptr(64), unsafe.Offsetof(pool{}.pending))
	for threads := 1; threads <= 9; threads++ {
		p := newPool(threads)
		require.Zero(t, uintptr(unsafe.Pointer(p))%64)
		if len(p.workers) > 0 {
			require.Zero(t, uintptr(unsafe.Pointer(&p.workers[0]))%64)
		}
		p.close()
	}
}

func TestPoolUsesAllThreads(t *testing.T) {
	p := newPool(3)
	defer p.close()
	var mu sync.Mutex
	chunks := map[[2]int]bool{}
	p.run(9, 1, func(lo, hi int) {
		mu.Lock()
		chunks[[2]int{lo, hi}] = true
		mu.Unlock()
	})
	require.Equal(t, map[[2]int]bool{{0, 3}: true, {3, 6}: true, {6, 9}: true}, chunks)
}

// TestPoolParksAndWakes runs jobs separated by pauses longer than the spin
// time, so every job has to wake parked workers (and a slow worker makes the
// caller park too).
func TestPoolParksAndWakes(t *testing.T) {
	p := newPool(3)
	defer p.close()
	for k := 0; k < 20; k++ {
		var sum atomic.Int64
		p.run(30, 1, func(lo, hi int) {
			if lo == 0 && k%2 == 0 {
				time.Sleep(3 * spinFor) // the caller outwaits its spin
			}
			for i := lo; i < hi; i++ {
				sum.Add(int64(i))
			}
		})
		require.Equal(t, int64(29*30/2), sum.Load())
		time.Sleep(2 * spinFor)
	}
}

func TestPoolConcurrentCallers(t *testing.T) {
	p := newPool(2)
	defer p.close()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 200; k++ {
				var sum atomic.Int64
				p.run(100, 7, func(lo, hi int) { sum.Add(int64(hi - lo)) })
				if sum.Load() != 100 {
					t.Errorf("sum %d", sum.Load())
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestPoolNoAllocs(t *testing.T) {
	p := newPool(2)
	defer p.close()
	out := make([]float32, 1000)
	body := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i]++
		}
	}
	allocs := testing.AllocsPerRun(1000, func() { p.run(len(out), 8, body) })
	require.Zero(t, allocs)
}

func TestPoolCloseIdempotentNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newPool(4)
	p.run(100, 1, func(lo, hi int) {})
	p.close()
	p.close()
	// After close, run still works (serially).
	n := 0
	p.run(10, 1, func(lo, hi int) { n += hi - lo })
	require.Equal(t, 10, n)

	var after int
	for i := 0; i < 100; i++ {
		if after = runtime.NumGoroutine(); after <= before {
			break
		}
		time.Sleep(time.Millisecond)
	}
	require.LessOrEqual(t, after, before, "goroutines leaked")
}

// BenchmarkPoolRun measures the dispatch overhead: a run whose body does
// (almost) nothing, as a function of the pool size.
func BenchmarkPoolRun(b *testing.B) {
	for _, threads := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			p := newPool(threads)
			defer p.close()
			var sink [64]atomic.Int64
			body := func(lo, hi int) { sink[lo%64].Add(int64(hi - lo)) }
			for b.Loop() {
				p.run(64, 1, body)
			}
		})
	}
}

// TestPoolStress runs many tiny jobs on pools of 1 to 4 threads, with random
// pauses around and inside the jobs so that workers and the caller keep
// switching between spinning and parking: a lost wake-up anywhere in the
// park/wake protocol leaves a run blocked for ever. The runs happen in a
// goroutine and the test fails after a deadline rather than hanging.
func TestPoolStress(t *testing.T) {
	jobs := 3000
	if testing.Short() {
		jobs = 600
	}
	for threads := 1; threads <= 4; threads++ {
		t.Run(fmt.Sprintf("threads=%d", threads), func(t *testing.T) {
			// Not deferred: after a lost wake-up the stuck run holds the
			// pool's lock and close would hang; the pool is leaked then.
			p := newPool(threads)
			rng := rand.New(rand.NewPCG(uint64(threads), 1))
			// Pauses drawn up front: the rng is not safe for the workers.
			pause := make([]time.Duration, 2*jobs)
			for i := range pause {
				switch rng.IntN(8) {
				case 0: // longer than the spin: the other side parks
					pause[i] = spinFor + time.Duration(rng.IntN(int(8*spinFor)))
				case 1: // around the spin time, where the handshake races
					pause[i] = spinFor - spinFor/4 + time.Duration(rng.IntN(int(spinFor/2)))
				case 2:
					pause[i] = time.Duration(rng.IntN(int(spinYieldAfter)))
				}
			}
			errc := make(chan error, 1)
			var lastJob atomic.Int64
			go func() {
				hits := make([]int32, 4*threads)
				for k := range jobs {
					lastJob.Store(int64(k))
					clear(hits)
					p.run(len(hits), 1, func(lo, hi int) {
						// Slow down worker 0 (the caller parks) or the
						// caller, whose chunk is the last one (workers
						// finish first and go back to waiting).
						if slow := lo == 0 == (k%2 == 0); slow {
							stall(pause[2*k])
						}
						for i := lo; i < hi; i++ {
							hits[i]++
						}
					})
					for i, h := range hits {
						if h != 1 {
							errc <- fmt.Errorf("job %d: index %d covered %d times", k, i, h)
							return
						}
					}
					stall(pause[2*k+1])
				}
				errc <- nil
			}()
			select {
			case err := <-errc:
				p.close()
				require.NoError(t, err)
			case <-time.After(poolStressDeadline):
				t.Fatalf("threads=%d: job %d of %d still running after %v: lost wake-up", threads, lastJob.Load(), jobs, poolStressDeadline)
			}
		})
	}
}

// stall waits for d: busy for short pauses, whose length matters (a sleep
// overshoots by tens of microseconds), asleep for longer ones.
func stall(d time.Duration) {
	if d > 4*spinFor {
		time.Sleep(d)
		return
	}
	for start := time.Now(); time.Since(start) < d; {
	}
}

// poolStressDeadline is far beyond what the stress test needs, even under
// emulation (a few seconds), and short enough to fail a CI run quickly.
const poolStressDeadline = 60 * time.Second
