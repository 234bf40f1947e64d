package model

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// maxAbsDiff is the largest |a[i]-b[i]|.
func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// requireLogitsClose checks that got matches want up to float32 rounding in a
// different order of summation: within 1e-5 of the largest |want|.
func requireLogitsClose(t *testing.T, got, want []float32, msgAndArgs ...any) {
	t.Helper()
	var scale float64
	for _, v := range want {
		scale = max(scale, math.Abs(float64(v)))
	}
	require.LessOrEqual(t, maxAbsDiff(got, want), 1e-5*max(scale, 1), msgAndArgs...)
}

type logitsCase struct {
	Checkpoint string `json:"checkpoint"`
	Tokens     []int  `json:"tokens"`
	Logits     string `json:"logits"`
	VocabSize  int    `json:"vocab_size"`
}

// loadLogitsCases reads golden/logits.json and the reference logits.
func loadLogitsCases(t *testing.T) ([]logitsCase, [][]float32) {
	data, err := os.ReadFile(fixture(t, "golden/logits.json"))
	require.NoError(t, err)
	var cases []logitsCase
	require.NoError(t, json.Unmarshal(data, &cases))
	require.NotEmpty(t, cases)
	var want [][]float32
	for _, c := range cases {
		raw, err := os.ReadFile(fixture(t, filepath.Join("golden", c.Logits)))
		require.NoError(t, err)
		require.Equal(t, len(c.Tokens)*c.VocabSize*4, len(raw), c.Logits)
		f := make([]float32, len(raw)/4)
		for i := range f {
			f[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		want = append(want, f)
	}
	return cases, want
}

// TestForwardMatchesReferenceLogits compares the logits after every position
// with llama2.c's, within 1e-4 absolute (float32 sums in another order differ
// by a few ulps of values of order 10).
func TestForwardMatchesReferenceLogits(t *testing.T) {
	cases, want := loadLogitsCases(t)
	for i, c := range cases {
		name := strings.TrimPrefix(c.Checkpoint, "models/")
		m := openModel(t, fixture(t, name))
		require.Equal(t, c.VocabSize, m.Config.VocabSize)
		ref := newReferenceForward(m)
		for _, threads := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/threads=%d", name, threads), func(t *testing.T) {
				s := newSession(t, m, threads)
				for pos, tok := range c.Tokens {
					got, err := s.Forward(tok, pos)
					require.NoError(t, err)
					w := want[i][pos*c.VocabSize : (pos+1)*c.VocabSize]
					require.LessOrEqual(t, maxAbsDiff(got, w), 1e-4, "position %d", pos)
				}
			})
		}
		t.Run(name+"/reference", func(t *testing.T) {
			for pos, tok := range c.Tokens {
				w := want[i][pos*c.VocabSize : (pos+1)*c.VocabSize]
				require.LessOrEqual(t, maxAbsDiff(ref.forward(tok, pos), w), 1e-4, "position %d", pos)
			}
		})
	}
}

// TestForwardMatchesReferenceOnOddShapes runs the session and the plain
// reference on generated checkpoints of awkward shapes and both formats.
func TestForwardMatchesReferenceOnOddShapes(t *testing.T) {
	shapes := []Config{
		tinyConfig,
		{Dim: 64, HiddenDim: 172, Layers: 3, Heads: 8, KVHeads: 8, VocabSize: 50, SeqLen: 16, SharedClassifier: true},
		{Dim: 36, HiddenDim: 77, Layers: 1, Heads: 3, KVHeads: 1, VocabSize: 300, SeqLen: 9, Version: 1},
		{Dim: 2, HiddenDim: 1, Layers: 1, Heads: 1, KVHeads: 1, VocabSize: 3, SeqLen: 5, Version: 1, SharedClassifier: true},
	}
	for _, c := range shapes {
		t.Run(c.describe(), func(t *testing.T) {
			m := openModel(t, writeCheckpoint(t, c, 7))
			ref := newReferenceForward(m)
			s1, s2 := newSession(t, m, 1), newSession(t, m, 2)
			r := rand.New(rand.NewPCG(1, 2))
			for pos := range c.SeqLen {
				tok := r.IntN(c.VocabSize)
				want := ref.forward(tok, pos)
				for _, s := range []*Session{s1, s2} {
					got, err := s.Forward(tok, pos)
					require.NoError(t, err)
					requireLogitsClose(t, got, want, "position %d", pos)
				}
			}
		})
	}
}

// TestVersion1MatchesLegacy reads the same weights from a v0 and a v1 file.
func TestVersion1MatchesLegacy(t *testing.T) {
	c0 := tinyConfig
	c1 := c0
	c1.Version = 1
	m0 := openModel(t, writeCheckpoint(t, c0, 3))
	m1 := openModel(t, writeCheckpoint(t, c1, 3))
	require.Equal(t, 1, m1.Config.Version)
	s0, s1 := newSession(t, m0, 1), newSession(t, m1, 1)
	for pos, tok := range []int{1, 5, 36, 0, 17} {
		a, err := s0.Forward(tok, pos)
		require.NoError(t, err)
		b, err := s1.Forward(tok, pos)
		require.NoError(t, err)
		require.Equal(t, a, b)
	}
}

// TestConcurrentSessions runs several sessions on one model at once; each
// must produce exactly what a session alone produces.
func TestConcurrentSessions(t *testing.T) {
	m := openModel(t, writeCheckpoint(t, tinyConfig, 5))
	const n = 4
	seqs := make([][]int, n)
	for i := range seqs {
		r := rand.New(rand.NewPCG(uint64(i), 9))
		for range m.Config.SeqLen {
			seqs[i] = append(seqs[i], r.IntN(m.Config.VocabSize))
		}
	}
	run := func(s *Session, seq []int) [][]float32 {
		var out [][]float32
		for pos, tok := range seq {
			l, err := s.Forward(tok, pos)
			if err != nil {
				panic(err)
			}
			out = append(out, append([]float32(nil), l...))
		}
		return out
	}
	alone := make([][][]float32, n)
	for i := range seqs {
		alone[i] = run(newSession(t, m, 1), seqs[i])
	}
	together := make([][][]float32, n)
	var wg sync.WaitGroup
	for i := range seqs {
		s := newSession(t, m, 2)
		wg.Go(func() { together[i] = run(s, seqs[i]) })
	}
	wg.Wait()
	require.Equal(t, alone, together)
}

func TestForwardRejectsBadArguments(t *testing.T) {
	m := openModel(t, writeCheckpoint(t, tinyConfig, 1))
	s := newSession(t, m, 1)
	_, err := s.Forward(m.Config.VocabSize, 0)
	require.ErrorContains(t, err, "outside the vocabulary")
	_, err = s.Forward(-1, 0)
	require.ErrorContains(t, err, "outside the vocabulary")
	_, err = s.Forward(0, m.Config.SeqLen)
	require.ErrorContains(t, err, "outside the context")
	_, err = m.NewSession(SessionOptions{Threads: -1})
	require.ErrorContains(t, err, "threads")
}

func TestForwardDoesNotAllocate(t *testing.T) {
	m := openModel(t, writeCheckpoint(t, tinyConfig, 1))
	for _, threads := range []int{1, 2} {
		s := newSession(t, m, threads)
		pos := 0
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := s.Forward(3, pos); err != nil {
				t.Fatal(err)
			}
			pos++
		})
		require.Zero(t, allocs, "threads=%d", threads)
	}
}

// TestPrefillMatchesForward feeds prompts in batches of several sizes and
// compares the next logits and the KV cache with one-at-a-time feeding.
func TestPrefillMatchesForward(t *testing.T) {
	for _, c := range []Config{tinyConfig, {Dim: 64, HiddenDim: 172, Layers: 2, Heads: 8, KVHeads: 4, VocabSize: 40, SeqLen: 40, SharedClassifier: true}} {
		m := openModel(t, writeCheckpoint(t, c, 11))
		r := rand.New(rand.NewPCG(5, 6))
		tokens := make([]int, c.SeqLen)
		for i := range tokens {
			tokens[i] = r.IntN(c.VocabSize)
		}
		for _, n := range []int{2, 7, c.SeqLen} {
			one := newSession(t, m, 1)
			var want []float32
			for pos, tok := range tokens[:n] {
				l, err := one.Forward(tok, pos)
				require.NoError(t, err)
				want = l
			}
			for _, batch := range []int{2, 3, 5, 64} {
				for _, threads := range []int{1, 2} {
					s, err := m.NewSession(SessionOptions{Threads: threads, Batch: batch})
					require.NoError(t, err)
					require.NoError(t, s.Prefill(tokens[:n-1], 0))
					got, err := s.Forward(tokens[n-1], n-1)
					require.NoError(t, err)
					requireLogitsClose(t, got, want, "n=%d batch=%d threads=%d", n, batch, threads)
					kv := n * c.KVDim()
					for l := range c.Layers {
						off := l * c.SeqLen * c.KVDim()
						requireLogitsClose(t, s.keys.f[off:off+kv], one.keys.f[off:off+kv])
						requireLogitsClose(t, s.values.f[off:off+kv], one.values.f[off:off+kv])
					}
					// The last token in the batch too, over what s fed.
					got, err = s.PrefillLogits(tokens[:n], 0)
					require.NoError(t, err)
					requireLogitsClose(t, got, want, "PrefillLogits n=%d batch=%d threads=%d", n, batch, threads)
					for l := range c.Layers {
						off := l * c.SeqLen * c.KVDim()
						requireLogitsClose(t, s.keys.f[off:off+kv], one.keys.f[off:off+kv])
					}
					s.Close()
				}
			}
		}
	}
}

// TestPrefillQ8MatchesForward checks that batched prompts on Q8_0 models
// give exactly the logits and KV cache of one-at-a-time feeding: the int8
// products are bit-identical in any row order, and so is everything else,
// unless the compiler fuses multiply-adds (goFusesMulAdd; then within
// requireLogitsClose).
// Group size 4 puts groups inside rows, 12 makes them straddle the rows of
// w2 (hidden 100), which takes the plain loop.
func TestPrefillQ8MatchesForward(t *testing.T) {
	c := tinyConfig
	for _, gs := range []int{4, 12} {
		m, err := openModel(t, writeCheckpoint(t, c, 12)).Quantize(gs)
		require.NoError(t, err)
		r := rand.New(rand.NewPCG(7, 8))
		tokens := make([]int, c.SeqLen)
		for i := range tokens {
			tokens[i] = r.IntN(c.VocabSize)
		}
		one, err := m.NewSession(SessionOptions{Threads: 1, Batch: 1})
		require.NoError(t, err)
		var want []float32
		for pos, tok := range tokens {
			want, err = one.Forward(tok, pos)
			require.NoError(t, err)
		}
		for _, batch := range []int{3, 64} {
			for _, threads := range []int{1, 2} {
				s, err := m.NewSession(SessionOptions{Threads: threads, Batch: batch})
				require.NoError(t, err)
				require.NotNil(t, s.batch)
				require.NoError(t, s.Prefill(tokens[:c.SeqLen-1], 0))
				got, err := s.Forward(tokens[c.SeqLen-1], c.SeqLen-1)
				require.NoError(t, err)
				last, err := s.PrefillLogits(tokens, 0) // again, the last token in the batch
				require.NoError(t, err)
				if !goFusesMulAdd {
					require.Equal(t, want, got, "gs=%d batch=%d threads=%d", gs, batch, threads)
					require.Equal(t, want, last, "PrefillLogits gs=%d batch=%d threads=%d", gs, batch, threads)
					require.Equal(t, one.keys.f, s.keys.f)
					require.Equal(t, one.values.f, s.values.f)
				} else {
					// The float32 code around the products (rmsnorm,
					// RoPE, attention) may be fused differently in the
					// batched and the one-token path: each fusion drops
					// one rounding, so allow what TestPrefillMatchesForward
					// allows for sums in another order.
					requireLogitsClose(t, got, want, "gs=%d batch=%d threads=%d", gs, batch, threads)
					requireLogitsClose(t, last, want, "PrefillLogits gs=%d batch=%d threads=%d", gs, batch, threads)
					requireLogitsClose(t, s.keys.f, one.keys.f)
					requireLogitsClose(t, s.values.f, one.values.f)
				}
				s.Close()
			}
		}
		one.Close()
	}
}

func TestPrefillErrors(t *testing.T) {
	m := openModel(t, writeCheckpoint(t, tinyConfig, 1))
	s := newSession(t, m, 1)
	require.ErrorContains(t, s.Prefill(make([]int, tinyConfig.SeqLen+1), 0), "outside the context")
	require.ErrorContains(t, s.Prefill([]int{1, 99}, 0), "outside the vocabulary")
	for _, batch := range []int{1, 4} {
		s, err := m.NewSession(SessionOptions{Threads: 1, Batch: batch})
		require.NoError(t, err)
		_, err = s.PrefillLogits(nil, 0)
		require.ErrorIs(t, err, ErrEmptyPrompt)
		_, err = s.PrefillLogits([]int{1, 2, 99}, 0)
		require.ErrorContains(t, err, "outside the vocabulary")
		_, err = s.PrefillLogits(make([]int, tinyConfig.SeqLen+1), 0)
		require.ErrorIs(t, err, ErrContextFull)
		s.Close()
		_, err = s.PrefillLogits([]int{1, 2}, 0)
		require.ErrorIs(t, err, ErrClosed)
	}
	_, err := m.NewSession(SessionOptions{Batch: -1})
	require.ErrorContains(t, err, "batch")
}
