package model

// The library API used carelessly: concurrent calls on one session or
// batch, nil arguments, positions that skip, sessions and batches never
// closed.

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
)

// holdSession runs a generation on s whose emit callback blocks until the
// returned release is called: while it blocks, the session is in use.
// release returns the generation's error.
func holdSession(s *Session) (release func() error) {
	entered, hold, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		first := true
		_, err := s.Generate(context.Background(), []int{tokenizer.BOS}, nil, 4, func(int, int) bool {
			if first {
				first = false
				close(entered)
				<-hold
			}
			return true
		})
		done <- err
	}()
	<-entered
	return func() error {
		close(hold)
		return <-done
	}
}

// TestSessionBusy: every entry point of a session in use by another call
// fails with ErrBusy, and leaves the session as it was.
func TestSessionBusy(t *testing.T) {
	m, _ := stories260K(t)
	s := newSession(t, m, 2)
	b, err := m.NewBatch(BatchOptions{Size: 2, Threads: 1})
	require.NoError(t, err)
	defer b.Close()
	other := newSession(t, m, 1)
	release := holdSession(s)
	calls := map[string]func() error{
		"Forward":       func() error { _, err := s.Forward(1, 0); return err },
		"Prefill":       func() error { return s.Prefill([]int{1, 2}, 0) },
		"PrefillLogits": func() error { _, err := s.PrefillLogits([]int{1, 2}, 0); return err },
		"Generate": func() error {
			_, err := s.Generate(context.Background(), []int{1}, nil, 2, nil)
			return err
		},
		"Start": func() error {
			q, err := s.Start([]int{1}, GenerateOptions{})
			if err == nil {
				q.Cancel()
			}
			return err
		},
		"Tokens": func() error {
			for _, err := range s.Tokens(context.Background(), []int{1}, GenerateOptions{MaxTokens: 1}) {
				if err != nil {
					return err
				}
			}
			return nil
		},
		"Batch.Forward": func() error {
			_, err := b.Forward([]BatchEntry{{Session: other, Token: 1}, {Session: s, Token: 1, Pos: 0}})
			return err
		},
	}
	for name, call := range calls {
		require.ErrorIs(t, call(), ErrBusy, name)
	}
	require.NoError(t, release())
	for name, call := range calls {
		require.NoError(t, call(), "%s once the session is free", name)
	}
}

// TestSequenceHoldsSession: while a sequence runs on a session, the calls
// that would overwrite its cache fail with ErrBusy.
func TestSequenceHoldsSession(t *testing.T) {
	m, _ := stories260K(t)
	s := newSession(t, m, 1)
	q, err := s.Start([]int{tokenizer.BOS, 5, 6}, GenerateOptions{MaxTokens: 3})
	require.NoError(t, err)
	_, err = s.Forward(1, 0)
	require.ErrorIs(t, err, ErrBusy)
	require.ErrorIs(t, s.Prefill([]int{1}, 0), ErrBusy)
	_, err = s.PrefillLogits([]int{1}, 0)
	require.ErrorIs(t, err, ErrBusy)
	_, err = s.Generate(context.Background(), []int{1}, nil, 2, nil)
	require.ErrorIs(t, err, ErrBusy)
	_, err = q.Prefill(0)
	require.NoError(t, err, "the sequence itself may")
	q.Cancel()
	_, err = s.Forward(1, 0)
	require.NoError(t, err)
}

// TestBatchConcurrentSteps: steps of one batch from two goroutines (which
// once panicked inside a pool worker, out of the caller's reach) either
// run or fail with ErrBusy, and the tokens are those of steps run one at a
// time.
func TestBatchConcurrentSteps(t *testing.T) {
	m, _ := stories260K(t)
	b, err := m.NewBatch(BatchOptions{Size: 2, Threads: 2})
	require.NoError(t, err)
	defer b.Close()
	const steps = 60
	start := func() []*Sequence {
		var seqs []*Sequence
		for _, p := range [][]int{{tokenizer.BOS}, {tokenizer.BOS, 7}} {
			q, err := newSession(t, m, 1).Start(p, GenerateOptions{MaxTokens: steps})
			require.NoError(t, err)
			_, err = q.Prefill(0)
			require.NoError(t, err)
			seqs = append(seqs, q)
		}
		return seqs
	}
	var want [][]int
	for _, q := range start() {
		var ids []int
		for range steps {
			require.NoError(t, b.Step([]*Sequence{q}))
			ids = append(ids, q.Token().ID)
		}
		want = append(want, ids)
	}

	seqs := start()
	got := make([][]int, 2)
	busy := make([]int, 2)
	errs := make(chan error, 2)
	var ready sync.WaitGroup
	ready.Add(2)
	for g := range 2 {
		go func() {
			ready.Done()
			ready.Wait()
			for len(got[g]) < steps {
				err := b.Step(seqs[g : g+1])
				if errors.Is(err, ErrBusy) {
					busy[g]++
					runtime.Gosched()
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				got[g] = append(got[g], seqs[g].Token().ID)
			}
			errs <- nil
		}()
	}
	for range 2 {
		require.NoError(t, <-errs)
	}
	require.Equal(t, want, got)
	t.Logf("steps refused with ErrBusy: %d and %d", busy[0], busy[1])
}

// TestGenerateDefaults: a nil sampler is greedy, a nil emit callback emits
// nothing, a nil context is an error.
func TestGenerateDefaults(t *testing.T) {
	m, tok := stories260K(t)
	prompt := tok.Encode("Once upon a time", true, false)
	var want []int
	st, err := newSession(t, m, 1).Generate(context.Background(), prompt, sample.New(m.Config.VocabSize, 0, 0, 1), 20,
		func(prev, next int) bool { want = append(want, next); return true })
	require.NoError(t, err)
	var got []int
	st2, err := newSession(t, m, 1).Generate(context.Background(), prompt, nil, 20,
		func(prev, next int) bool { got = append(got, next); return true })
	require.NoError(t, err)
	require.Equal(t, want, got, "nil sampler: greedy")
	require.Equal(t, st.GeneratedTokens, st2.GeneratedTokens)

	st3, err := newSession(t, m, 1).Generate(context.Background(), prompt, nil, 20, nil)
	require.NoError(t, err)
	require.Equal(t, st.Positions, st3.Positions, "nil emit: the whole run")

	var nilCtx context.Context
	_, err = newSession(t, m, 1).Generate(nilCtx, prompt, nil, 20, nil)
	require.ErrorContains(t, err, "nil context")
	for _, err := range newSession(t, m, 1).Tokens(nilCtx, prompt, GenerateOptions{}) {
		require.ErrorContains(t, err, "nil context")
	}
}

// TestStepNilSequence: nil sequences and entries are errors, not panics.
func TestStepNilSequence(t *testing.T) {
	m, _ := stories260K(t)
	b, err := m.NewBatch(BatchOptions{Size: 2, Threads: 1})
	require.NoError(t, err)
	defer b.Close()
	require.ErrorContains(t, b.Step([]*Sequence{nil}), "sequence 0 is nil")
	require.ErrorContains(t, b.Step([]*Sequence{{}}), "sequence 0: the sequence was not started")
	_, err = b.Forward([]BatchEntry{{}})
	require.ErrorContains(t, err, "entry 0 has no session")
}

// TestStepSharedSampler: a step's sequences sample at once, so two of them
// holding one sampler is an error, not a race.
func TestStepSharedSampler(t *testing.T) {
	m, _ := stories260K(t)
	b, err := m.NewBatch(BatchOptions{Size: 2, Threads: 2})
	require.NoError(t, err)
	defer b.Close()
	sampler := sample.New(m.Config.VocabSize, 1, 0.9, 7)
	var seqs []*Sequence
	for range 2 {
		q, err := newSession(t, m, 1).Start([]int{1}, GenerateOptions{MaxTokens: 4, Sampler: sampler})
		require.NoError(t, err)
		_, err = q.Prefill(1)
		require.NoError(t, err)
		seqs = append(seqs, q)
	}
	require.ErrorContains(t, b.Step(seqs), "sequences 0 and 1 share a sampler")
	seqs[1].sampler = sample.New(m.Config.VocabSize, 1, 0.9, 7)
	require.NoError(t, b.Step(seqs))
}

// TestPositionsFollow: a call may feed the next position or go back (the
// positions after it are then dropped), never skip one.
func TestPositionsFollow(t *testing.T) {
	m, _ := stories260K(t)
	s := newSession(t, m, 1)
	_, err := s.Forward(1, 1)
	require.ErrorIs(t, err, ErrPositionGap)
	require.ErrorContains(t, err, "position 1 skips positions: the cache holds 0 positions")
	_, err = s.Forward(1, 0)
	require.NoError(t, err)
	require.NoError(t, s.Prefill([]int{2, 3, 4}, 1))
	_, err = s.PrefillLogits([]int{5, 6}, 5)
	require.ErrorIs(t, err, ErrPositionGap)
	_, err = s.PrefillLogits([]int{5, 6}, 4)
	require.NoError(t, err)
	_, err = s.Forward(9, 2) // back: positions 3.. are dropped
	require.NoError(t, err)
	_, err = s.Forward(9, 4)
	require.ErrorIs(t, err, ErrPositionGap)
	require.ErrorIs(t, s.Prefill([]int{1}, 4), ErrPositionGap)

	b, err := m.NewBatch(BatchOptions{Size: 2, Threads: 1})
	require.NoError(t, err)
	defer b.Close()
	_, err = b.Forward([]BatchEntry{{Session: s, Token: 1, Pos: 4}})
	require.ErrorIs(t, err, ErrPositionGap)
	_, err = b.Forward([]BatchEntry{{Session: s, Token: 1, Pos: 3}})
	require.NoError(t, err)
	_, err = s.Forward(1, 4)
	require.NoError(t, err, "the batch fed position 3")
}

// TestUnclosedLeaveNoGoroutines: sessions and batches dropped without
// Close stop their workers once collected.
func TestUnclosedLeaveNoGoroutines(t *testing.T) {
	m, _ := stories260K(t)
	runtime.GC()
	before := runtime.NumGoroutine()
	func() {
		var kept []any
		for range 5 {
			s, err := m.NewSession(SessionOptions{Threads: 4})
			require.NoError(t, err)
			_, err = s.Forward(1, 0) // the workers have run
			require.NoError(t, err)
			for range s.Tokens(context.Background(), []int{1}, GenerateOptions{MaxTokens: 2}) {
			}
			b, err := m.NewBatch(BatchOptions{Threads: 4})
			require.NoError(t, err)
			_, err = b.Forward([]BatchEntry{{Session: s, Token: 1, Pos: 1}})
			require.NoError(t, err)
			kept = append(kept, s, b)
		}
		runtime.GC()
		require.Equal(t, before+5*2*3, runtime.NumGoroutine(), "3 workers each, running")
		runtime.KeepAlive(kept)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before the sessions and batches", runtime.NumGoroutine(), before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	// The sessions' references to the mapping went with them: closing
	// the model unmaps it.
	require.NoError(t, m.Close())
	require.Zero(t, m.mapRefs().refs)
}

// TestCloseWhileRunning: Close during a call from another goroutine
// leaves the session's weights mapped until the call returns, which then
// fails with ErrClosed at its next position instead of reading unmapped
// memory.
func TestCloseWhileRunning(t *testing.T) {
	m, _ := stories260K(t)
	s, err := m.NewSession(SessionOptions{Threads: 2})
	require.NoError(t, err)
	release := holdSession(s)
	s.Close()
	require.Equal(t, 2, m.mapRefs().refs, "the running call keeps the session's reference")
	_, err = s.Forward(1, 0)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, release(), ErrClosed)
	require.Equal(t, 1, m.mapRefs().refs, "released when the call returned")
}
