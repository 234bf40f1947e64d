package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// withRowSplitMin sets rowSplitMinBytes for the test.
func withRowSplitMin(t *testing.T, n int64) {
	old := rowSplitMinBytes
	rowSplitMinBytes = n
	t.Cleanup(func() { rowSplitMinBytes = old })
}

// TestPrefillRowSplitMatchesTokenSplit: splitting a prompt layer's products
// by rows computes the same floats as splitting its tokens, bit for bit,
// for every tensor type the row split takes, with the batch and the
// threads' row ranges falling on odd boundaries.
func TestPrefillRowSplitMatchesTokenSplit(t *testing.T) {
	paths := []string{writeCheckpoint(t, tinyConfig, 21),
		writeCheckpoint(t, Config{Dim: 64, HiddenDim: 172, Layers: 2, Heads: 8, KVHeads: 4, VocabSize: 40, SeqLen: 40}, 22)}
	for _, name := range []string{"randk-F16.gguf", "randk-Q8_0.gguf", "randk-Q4_K_M.gguf"} {
		paths = append(paths, fixture(t, "gguf/"+name))
	}
	for _, path := range paths {
		m := openModel(t, path)
		c := m.Config
		r := rand.New(rand.NewPCG(7, 8))
		tokens := make([]int, min(c.SeqLen, 37))
		for i := range tokens {
			tokens[i] = r.IntN(c.VocabSize)
		}
		run := func(minBytes int64, threads, batch int) (*Session, []float32) {
			withRowSplitMin(t, minBytes)
			s, err := m.NewSession(SessionOptions{Threads: threads, Batch: batch})
			require.NoError(t, err)
			require.Equal(t, minBytes == 0 && threads > 1, s.batch.scratch != nil, "%s: row split taken", path)
			require.NoError(t, s.Prefill(tokens[:len(tokens)-1], 0))
			logits, err := s.Forward(tokens[len(tokens)-1], len(tokens)-1)
			require.NoError(t, err)
			logits = slices.Clone(logits)
			// Again with the last token in the batch.
			last, err := s.PrefillLogits(tokens, 0)
			require.NoError(t, err)
			return s, append(logits, last...)
		}
		for _, batch := range []int{5, 64} {
			want, wantLogits := run(math.MaxInt64, 2, batch)
			got, gotLogits := run(0, 2, batch)
			require.Equal(t, wantLogits, gotLogits, "%s batch %d", path, batch)
			require.Equal(t, want.keys.f, got.keys.f, "%s batch %d", path, batch)
			require.Equal(t, want.values.f, got.values.f, "%s batch %d", path, batch)
			want.Close()
			got.Close()
		}
	}
}

func TestRowSplitLayers(t *testing.T) {
	m := openModel(t, writeCheckpoint(t, tinyConfig, 23))
	withRowSplitMin(t, 1)
	require.True(t, rowSplitLayers(&m.w, 2))
	require.False(t, rowSplitLayers(&m.w, 1), "one thread splits nothing")
	withRowSplitMin(t, math.MaxInt64)
	require.False(t, rowSplitLayers(&m.w, 2), "layers below the minimum")
	withRowSplitMin(t, 1)
	q := m.w
	q.layers = append([]layerWeights(nil), m.w.layers...)
	q.layers[0].w2 = tensor{rows: 1, cols: 1, q: []int8{1}, s: []float32{1}, gs: 1}
	require.False(t, rowSplitLayers(&q, 2), "llama2.c Q8_0 has no row views")
}
