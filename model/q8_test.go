package model

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/llama2-go/llama2/internal/kernels"
	"github.com/llama2-go/llama2/sample"
	"github.com/stretchr/testify/require"
)

func randomFloats(r *rand.Rand, n int) []float32 {
	f := make([]float32, n)
	for i := range f {
		f[i] = float32(r.NormFloat64())
	}
	return f
}

// TestQ8LogitsCloseToFP32 compares a Q8_0 model's logits with its fp32
// original's. Rounding weights and activations to 8 bits (steps of 1/127 of
// each group's largest value) perturbs every product by about 1%, and the
// perturbations add up over the layers: on stories260K the logits move by
// about 1.5% of their range (spread of about 25, differences up to 0.47).
// The bound, 3% of each position's range, leaves room for float ordering but
// fails for a wrong group, scale or rounding (errors of 10% and more), and
// the most likely token must not change.
func TestQ8LogitsCloseToFP32(t *testing.T) {
	fp := openModel(t, fixture(t, "stories260K.bin"))
	q8 := openModel(t, fixture(t, "stories260K-q80.bin"))
	require.Equal(t, 64, q8.Config.GroupSize)
	a, b := newSession(t, fp, 1), newSession(t, q8, 2)
	for pos, tok := range []int{1, 403, 407, 261, 378, 432, 383, 286, 261, 376} {
		la, err := a.Forward(tok, pos)
		require.NoError(t, err)
		lb, err := b.Forward(tok, pos)
		require.NoError(t, err)
		lo, hi := la[0], la[0]
		for _, v := range la {
			lo, hi = min(lo, v), max(hi, v)
		}
		require.Less(t, maxAbsDiff(la, lb), 0.03*float64(hi-lo), "position %d", pos)
		require.Equal(t, sample.Argmax(la), sample.Argmax(lb), "position %d", pos)
	}
}

// TestQuantizeInMemoryMatchesFile: Model.Quantize gives the same model as
// the file WriteQ8 writes.
func TestQuantizeInMemoryMatchesFile(t *testing.T) {
	for _, c := range []Config{tinyConfig, {Dim: 64, HiddenDim: 172, Layers: 2, Heads: 8, KVHeads: 4, VocabSize: 50, SeqLen: 8, SharedClassifier: true}} {
		src := openModel(t, writeCheckpoint(t, c, 4))
		var buf bytes.Buffer
		require.NoError(t, WriteQ8(&buf, src, 4, nil))
		path := filepath.Join(t.TempDir(), "q.bin")
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
		fromFile := openModel(t, path)
		require.Equal(t, 2, fromFile.Config.Version)
		inMemory, err := openModel(t, writeCheckpoint(t, c, 4)).Quantize(4)
		require.NoError(t, err)
		sa, sb := newSession(t, fromFile, 1), newSession(t, inMemory, 2)
		for pos, tok := range []int{1, 3, 5, 7, 2, 0} {
			la, err := sa.Forward(tok, pos)
			require.NoError(t, err)
			lb, err := sb.Forward(tok, pos)
			require.NoError(t, err)
			require.Equal(t, la, lb)
		}
	}
}

func TestParseQ8CheckpointErrors(t *testing.T) {
	src := openModel(t, writeCheckpoint(t, tinyConfig, 4))
	var buf bytes.Buffer
	require.NoError(t, WriteQ8(&buf, src, 4, nil))
	valid := buf.Bytes()
	_, _, err := parseCheckpoint(aligned(valid), "q.bin")
	require.NoError(t, err)
	withGS := func(gs int32) []byte {
		b := append([]byte(nil), valid...)
		binary.LittleEndian.PutUint32(b[37:], uint32(gs))
		return b
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", valid[:len(valid)-1], "truncated"},
		{"group size 0", withGS(0), "group_size is 0"},
		{"negative group size", withGS(-64), "group_size is -64"},
		{"group size not dividing", withGS(7), "group_size 7 does not divide tensor"},
		{"group size larger than tensors", withGS(1 << 30), "does not divide"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parseCheckpoint(aligned(c.data), "q.bin")
			require.ErrorContains(t, err, "checkpoint q.bin: ")
			require.ErrorContains(t, err, c.want)
		})
	}
	require.ErrorContains(t, WriteQ8(&buf, src, 5, nil), "does not divide")
	_, err = src.Quantize(0)
	require.ErrorContains(t, err, "must be positive")
}

// TestMulBatchQ8 checks the batched Q8_0 product against mulRows, vector by
// vector, with ==: several row blocks with a short last one, and (on VNNI)
// the 4x4 tile kernel with leftover rows and vectors, several chunks of
// vectors, and vectors that are not rows of one array (which skip it).
func TestMulBatchQ8(t *testing.T) {
	for _, c := range []struct {
		rows, cols, gs, batch int
		apart                 bool // vectors allocated one by one
	}{
		{1100, 256, 32, 5, false},
		{13, 288, 32, 9, false}, // gs 32, odd groups per row
		{8, 1376, 32, 6, false}, // 43 groups
		{5, 2048, 32, 70, false},
		{67, 512, 64, 11, false},
		{9, 1024, 128, 4, false},
		{6, 8192, 64, 39, false},
		{10, 256, 64, 7, true},
	} {
		r := rand.New(rand.NewPCG(13, uint64(c.rows)))
		w := tensor{rows: c.rows, cols: c.cols, q: make([]int8, c.rows*c.cols), s: make([]float32, c.rows*c.cols/c.gs), gs: c.gs}
		kernels.QuantizeQ8(w.q, w.s, randomFloats(r, c.rows*c.cols), c.gs, kernels.RoundHalfEven)
		x := randomFloats(r, c.batch*c.cols)
		acts := make([]activation, c.batch)
		if c.apart {
			for b := range acts {
				acts[b] = newActivation(x[b*c.cols:(b+1)*c.cols], actForm{gs: c.gs})
			}
		} else {
			newActivations(acts, x, c.cols, actForm{gs: c.gs})
		}
		out := make([]float32, c.batch*c.rows)
		w.mulBatch(out, x, quantizeRows(acts))
		for b := range acts {
			want := make([]float32, c.rows)
			kernels.MatVecQ8(want, w.q, w.s, 0, c.gs, acts[b].q, acts[b].s)
			require.Equal(t, want, out[b*c.rows:(b+1)*c.rows], "%+v: vector %d", c, b)
		}
	}
	require.Greater(t, 1100, q8BlockBytes/256, "the first case must span several row blocks")
}
