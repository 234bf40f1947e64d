package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/gguf"
	"github.com/llama2-go/llama2/internal/kernels"
)

// Quantized twins: llama.cpp's quantized copies of the Llama 3 and Qwen2
// test files are not among the shared fixtures, so these tests make their
// own. Each matrix of l3rand-f32 and q2rand-f32 (the tied classifier
// included) becomes random blocks of a type, and a second file holds the
// same blocks dequantized to F32 by the type's reference dequantizer. The
// block file's logits must then be those of the F32 file (which the
// goldens pin to llama.cpp's) but for the activations' 8-bit rounding:
// token by token, in prompt batches, and beside another sequence in a
// decode step. A kernel or a path that reads the blocks wrong lands far
// off (TestQuantTwinsCanFail).

// quantTwinTol bounds the twins' difference as a fraction of each
// position's logit range. The block kernels multiply activations rounded
// to 8 bits in blocks of 32: with these strong random weights that moves
// the logits by 0.7-1.0% of the range (all types, both files);
// llama.cpp's quantized activations move its own by about 1% on such files
// (see ../shared/README.md).
const quantTwinTol = 0.015

// twinTypes are the block types whose twins are made: the four types that
// llama-quantize falls back to at widths that are not a multiple of 256
// (Q5_0 and Q8_0 in Q4_K_M), and Q4_0.
var twinTypes = []gguf.Type{gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1, gguf.TypeQ8_0, gguf.TypeIQ4_NL}

// randomBlocks returns nb random blocks of t whose values spread about as
// N(0, std): a float16 scale d at the block's start (and Q4_1's and
// Q5_1's minimum m after it, centring the values), random quants.
func randomBlocks(r *rand.Rand, t gguf.Type, nb int, std float64) []byte {
	size := t.BlockBytes()
	out := make([]byte, nb*size)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	if t.BlockSize() == 256 {
		randomKScales(r, t, out, std)
		return out
	}
	// The standard deviation and mean of a block's quant values.
	qstd, qmean := map[gguf.Type][2]float64{
		gguf.TypeQ4_0: {4.6, 0}, gguf.TypeQ4_1: {4.6, 7.5}, gguf.TypeQ5_0: {9.2, 0},
		gguf.TypeQ5_1: {9.2, 15.5}, gguf.TypeQ8_0: {73.9, 0}, gguf.TypeIQ4_NL: {69, 0},
	}[t][0], map[gguf.Type][2]float64{gguf.TypeQ4_1: {0, 7.5}, gguf.TypeQ5_1: {0, 15.5}}[t][1]
	for b := range nb {
		blk := out[b*size:]
		d := float32(std/qstd) * (0.5 + r.Float32())
		binary.LittleEndian.PutUint16(blk, kernels.F32ToF16(d))
		if qmean != 0 {
			binary.LittleEndian.PutUint16(blk[2:], kernels.F32ToF16(-float32(qmean)*d))
		}
	}
	return out
}

// writeTwins writes the block and F32 twins of testdata/gguf/name.gguf
// for type t and returns their paths.
func writeTwins(t *testing.T, name string, typ gguf.Type) (blocks, f32 string) {
	t.Helper()
	data, err := os.ReadFile(fixture(t, "gguf/"+name+".gguf"))
	require.NoError(t, err)
	f, err := gguf.Parse(data)
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(uint64(typ), 77))
	bq, bf := gguf.NewBuilder(), gguf.NewBuilder()
	for _, kv := range f.KV {
		bq.Add(kv.Key, kv.Value.Interface())
		bf.Add(kv.Key, kv.Value.Interface())
	}
	bt := kernels.Block(typ)
	require.NotNil(t, bt, "%v has kernels", typ)
	for _, ti := range f.Tensors {
		if len(ti.Dims) != 2 {
			bq.AddTensor(ti.Name, ti.Type, ti.Dims, ti.Data)
			bf.AddTensor(ti.Name, ti.Type, ti.Dims, ti.Data)
			continue
		}
		cols, rows := int(ti.Dims[0]), int(ti.Dims[1])
		std := 1 / math.Sqrt(float64(cols)) // as the file's matrices
		if strings.HasPrefix(ti.Name, "token_embd") {
			std = 1
		}
		nb := cols / bt.BlockSize
		q := randomBlocks(r, typ, rows*nb, std)
		deq := make([]byte, 4*rows*cols)
		row := make([]float32, cols)
		for i := range rows {
			bt.Dequant(row, q[i*nb*bt.BlockBytes:(i+1)*nb*bt.BlockBytes])
			for j, v := range row {
				binary.LittleEndian.PutUint32(deq[4*(i*cols+j):], math.Float32bits(v))
			}
		}
		bq.AddTensor(ti.Name, typ, ti.Dims, q)
		bf.AddTensor(ti.Name, gguf.TypeF32, ti.Dims, deq)
	}
	dir := t.TempDir()
	blocks, f32 = filepath.Join(dir, name+"-"+typ.String()+".gguf"), filepath.Join(dir, name+"-deq.gguf")
	for path, b := range map[string]*gguf.Builder{blocks: bq, f32: bf} {
		out, err := b.Bytes()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, out, 0o600))
	}
	return blocks, f32
}

// twinError runs the teacher tokens through the block file and the F32
// twin, one token at a time, in prompt batches of chunk, and beside a
// second sequence in decode steps, and returns the largest difference of
// any of them from the F32 twin's logits, as a share of the logit range.
func twinError(t *testing.T, blocks, f32 string, tokens []int) float64 {
	t.Helper()
	mq, mf := openModel(t, blocks), openModel(t, f32)
	var want [][]float32
	sf := newSession(t, mf, 2)
	for pos, tok := range tokens {
		logits, err := sf.Forward(tok, pos)
		require.NoError(t, err)
		want = append(want, append([]float32(nil), logits...))
	}
	var worst float64
	sq := newSession(t, mq, 2)
	for pos, tok := range tokens {
		logits, err := sq.Forward(tok, pos)
		require.NoError(t, err)
		worst = max(worst, maxRangeError(logits, want[pos]))
	}
	for _, chunk := range []int{3, 24} {
		s := newSessionBatch(t, mq, 2, chunk)
		for pos := 0; pos < len(tokens); pos += chunk {
			end := min(pos+chunk, len(tokens))
			logits, err := s.PrefillLogits(tokens[pos:end], pos)
			require.NoError(t, err)
			worst = max(worst, maxRangeError(logits, want[end-1]))
		}
	}
	b, err := mq.NewBatch(BatchOptions{Size: 2, Threads: 2})
	require.NoError(t, err)
	defer b.Close()
	s0, s1 := newSession(t, mq, 1), newSession(t, mq, 1)
	v := mq.Config.VocabSize
	for pos, tok := range tokens {
		logits, err := b.Forward([]BatchEntry{
			{Session: s1, Token: tokens[len(tokens)-1-pos], Pos: pos},
			{Session: s0, Token: tok, Pos: pos},
		})
		require.NoError(t, err)
		worst = max(worst, maxRangeError(logits[v:2*v], want[pos]))
	}
	return worst
}

// TestQuantTwins: every block type that Llama 3 and Qwen2 files carry at
// widths that are not a multiple of 256 runs those architectures (biases,
// NEOX RoPE, rope_freqs, the tied classifier) as its dequantized twin
// does, on every path.
func TestQuantTwins(t *testing.T) {
	for _, f := range archF32Files {
		tokens := readInts(t, fixture(t, "golden/gguf/teacher-tokens-"+f.tokens+".txt"))
		if testing.Short() {
			tokens = tokens[:8]
		}
		for _, typ := range twinTypes {
			t.Run(fmt.Sprintf("%s/%v", f.name, typ), func(t *testing.T) {
				blocks, f32 := writeTwins(t, f.name, typ)
				worst := twinError(t, blocks, f32, tokens)
				t.Logf("max difference %.3f%% of the logit range", 100*worst)
				require.LessOrEqual(t, worst, quantTwinTol)
			})
		}
	}
}

// TestQuantTwinsCanFail: a twin that is not the block file's dequantized
// weights (another type's dequantizer reading the same bytes) is far off.
func TestQuantTwinsCanFail(t *testing.T) {
	f := archF32Files[1]
	tokens := readInts(t, fixture(t, "golden/gguf/teacher-tokens-"+f.tokens+".txt"))[:6]
	blocks, _ := writeTwins(t, f.name, gguf.TypeQ5_0)
	_, wrong := writeTwins(t, f.name, gguf.TypeQ5_1) // same seed layout, other values
	worst := twinError(t, blocks, wrong, tokens)
	t.Logf("max difference %.1f%% of the logit range", 100*worst)
	require.Greater(t, worst, 10*quantTwinTol)
}

// randomKScales sets the float16 scales of nb random K-quant super-blocks
// (Q4_K, Q5_K, Q6_K) so that their values spread about as N(0, std): the
// 6-bit (Q4_K, Q5_K: sc and m, both about 31.5 on average) or signed 8-bit
// (Q6_K: about 74 in spread) sub-block scales stay random.
func randomKScales(r *rand.Rand, t gguf.Type, out []byte, std float64) {
	size := t.BlockBytes()
	for b := range len(out) / size {
		blk := out[b*size : (b+1)*size]
		k := 0.5 + r.Float64()
		switch t {
		case gguf.TypeQ4_K, gguf.TypeQ5_K:
			qstd, qmean := 4.6, 7.5
			if t == gguf.TypeQ5_K {
				qstd, qmean = 9.2, 15.5
			}
			d := std / (31.5 * qstd) * k
			binary.LittleEndian.PutUint16(blk, kernels.F32ToF16(float32(d)))
			binary.LittleEndian.PutUint16(blk[2:], kernels.F32ToF16(float32(d*qmean)))
		case gguf.TypeQ6_K:
			binary.LittleEndian.PutUint16(blk[208:], kernels.F32ToF16(float32(std/(74*18.5)*k)))
		}
	}
}
