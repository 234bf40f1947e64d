package model

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// kvTolerance bounds a float16 or Q8_0 cache's logits against the float32
// cache's, as a share of each position's logit range, over 140 positions
// of the random test models (TestKVTypesCloseToF32 logs what they do).
// With float32 weights it is the rounding of the keys and values (float16:
// 2^-11 relative, which moved the logits by at most 0.008% of the range;
// Q8_0: half a step of max|x|/127 per block of 32, 0.23%). With quantized
// weights the activations are rounded to 8 bits before every product, and
// a cache's rounding that flips one of those moves the logits by a step of
// the activation's: 0.45-0.63% for float16 and 0.50-0.77% for Q8_0 on the
// Q8_0 and Q4_K_M files, the order of the 8-bit activations' own effect
// (quantTwinTol).
var kvTolerance = map[bool]map[KVType]float64{
	true:  {KVF16: 0.0002, KVQ8_0: 0.005}, // float32 weights
	false: {KVF16: 0.01, KVQ8_0: 0.015},   // quantized weights
}

// TestKVTypesCloseToF32: the same tokens through sessions whose keys and
// values are float16 or Q8_0 give logits within kvTolerance of the float32
// cache's. (Widening half of each Q8_0 block 1.5 times too large fails
// it.)
func TestKVTypesCloseToF32(t *testing.T) {
	for _, typ := range []string{"f32", "Q8_0", "Q4_K_M"} {
		m := openModel(t, fixture(t, "gguf/randk-"+typ+".gguf"))
		r := rand.New(rand.NewPCG(3, 4))
		n := 140
		if testing.Short() {
			n = 40 // arm64 under emulation (make test-arm64)
		}
		tokens := make([]int, n)
		for i := range tokens {
			tokens[i] = r.IntN(m.Config.VocabSize)
		}
		ref := kvSession(t, m, 2, 0, KVF32, KVF32)
		want := make([][]float32, len(tokens))
		for pos, tok := range tokens {
			logits, err := ref.Forward(tok, pos)
			require.NoError(t, err)
			want[pos] = append([]float32(nil), logits...)
		}
		for _, kv := range [][2]KVType{{KVF16, KVF32}, {KVF32, KVF16}, {KVF16, KVF16}, {KVQ8_0, KVF32}, {KVF32, KVQ8_0}, {KVQ8_0, KVQ8_0}} {
			t.Run(fmt.Sprintf("%s/%v-%v", typ, kv[0], kv[1]), func(t *testing.T) {
				s := kvSession(t, m, 2, 0, kv[0], kv[1])
				var worst float64
				for pos, tok := range tokens {
					logits, err := s.Forward(tok, pos)
					require.NoError(t, err)
					worst = max(worst, maxRangeError(logits, want[pos]))
				}
				bounds := kvTolerance[typ == "f32"]
				tol := max(bounds[kv[0]], bounds[kv[1]])
				t.Logf("max difference %.4f%% of the logit range (bound %.2f%%)", 100*worst, 100*tol)
				require.LessOrEqual(t, worst, tol)
				require.Positive(t, worst, "the cache's type changed nothing")
			})
		}
	}
}

func TestKVTypeErrors(t *testing.T) {
	m, _ := stories260K(t) // head size 8
	_, err := m.NewSession(SessionOptions{KeyCache: KVQ8_0})
	require.ErrorContains(t, err, "cache type q8_0 needs a head size that is a multiple of 32, not 8")
	_, err = m.NewSession(SessionOptions{ValueCache: KVType(9)})
	require.ErrorContains(t, err, "cache type 9 is not one of f32, f16, q8_0")
	s, err := m.NewSession(SessionOptions{KeyCache: KVF16, ValueCache: KVF16})
	require.NoError(t, err)
	s.Close()
	var kt KVType
	require.NoError(t, kt.Set("Q8_0"))
	require.Equal(t, KVQ8_0, kt)
	require.Equal(t, "q8_0", kt.String())
	require.ErrorContains(t, kt.Set("q4_0"), `cache type "q4_0": want f32, f16 or q8_0`)
	c := m.Config
	require.Equal(t, int64(c.Layers*c.SeqLen*c.KVDim()*(4+2)), m.KVCacheBytes(KVF32, KVF16))
}
