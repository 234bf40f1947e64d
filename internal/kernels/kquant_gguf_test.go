package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/gguf"
)

type kqTensor struct {
	typ  uint32 // ggml type: 0 F32, 1 F16, 12 Q4_K, 13 Q5_K, 14 Q6_K
	dims []int64
	data []byte // the tensor's bytes
}

// kqReadGGUF returns the tensors of a GGUF fixture, by name.
func kqReadGGUF(t *testing.T, name string) map[string]kqTensor {
	t.Helper()
	b, err := os.ReadFile(fixture(t, name))
	require.NoError(t, err)
	f, err := gguf.Parse(b)
	require.NoError(t, err)
	out := map[string]kqTensor{}
	for _, ti := range f.Tensors {
		out[ti.Name] = kqTensor{typ: uint32(ti.Type), dims: ti.Dims, data: ti.Data}
	}
	return out
}

// TestKQuantGolden dequantizes the K-quant tensors that llama-quantize wrote
// (randk-*.gguf) and compares them with the same tensors in F16: the values
// must agree within the quantization error, which halves with each bit (a
// wrongly unpacked scale, min or bit would be off by tens of percent). Then every implementation of the products runs on the real
// blocks (their scales, mins and d's as llama.cpp chooses them) against the
// reference.
func TestKQuantGolden(t *testing.T) {
	f16 := kqReadGGUF(t, "gguf/randk-F16.gguf")
	types := map[uint32]kqType{}
	for i, typ := range kqTypes() {
		types[uint32(12+i)] = typ
	}
	// Bounds on the max and rms |diff| / max|w| of a tensor, about 1.25x the
	// worst measured over the files' tensors (max 0.127, 0.071, 0.023; rms
	// 0.032, 0.016, 0.0077 for Q4_K, Q5_K, Q6_K; llama.cpp's quantizer
	// minimizes a weighted squared error, not the max).
	maxBound := map[string]float64{"Q4_K": 0.16, "Q5_K": 0.09, "Q6_K": 0.03}
	rmsBound := map[string]float64{"Q4_K": 0.04, "Q5_K": 0.02, "Q6_K": 0.01}
	seen := map[string]bool{}
	r := rand.New(rand.NewPCG(9, 10))
	for _, file := range []string{"randk-Q4_K_M.gguf", "randk-Q5_K_M.gguf", "randk-Q6_K.gguf"} {
		for name, q := range kqReadGGUF(t, "gguf/"+file) {
			typ, ok := types[q.typ]
			if !ok {
				continue
			}
			seen[typ.name] = true
			ref := f16[name]
			require.Equal(t, uint32(1), ref.typ, name)
			require.Equal(t, ref.dims, q.dims, name)
			n, rows := int(q.dims[0]), int(q.dims[1])
			got := make([]float32, n*rows)
			rb := n / qkK * typ.blockBytes
			for row := range rows {
				typ.dequant(got[row*n:(row+1)*n], q.data[row*rb:])
			}
			var maxW, maxD, ss float64
			for i, g := range got {
				w := float64(F16ToF32(binary.LittleEndian.Uint16(ref.data[2*i:])))
				maxW = max(maxW, math.Abs(w))
				maxD = max(maxD, math.Abs(float64(g)-w))
				ss += (float64(g) - w) * (float64(g) - w)
			}
			rms := math.Sqrt(ss / float64(len(got)))
			t.Logf("%s %s %v: max|diff| = %.4f max|w|, rms %.4f max|w|", file, name, typ.name, maxD/maxW, rms/maxW)
			require.LessOrEqual(t, maxD, maxBound[typ.name]*maxW, "%s %s: max", file, name)
			require.LessOrEqual(t, rms, rmsBound[typ.name]*maxW, "%s %s: rms", file, name)

			w := q.data[:rows*rb]
			xq, xs, xsum := kqRandActivation(r, n, 1)
			want, abs := refMatVecK(typ, w, rows, xq, xs)
			for _, impl := range typ.impls {
				out := make([]float32, rows)
				impl.MatVec(out, w, xq, xs, xsum)
				for i := range out {
					kqCheckClose(t, out[i], want[i], abs[i], kqTolerance(n), fmt.Sprintf("%s %s/%s row %d", name, typ.name, impl.name, i))
				}
			}
		}
	}
	require.Len(t, seen, 3, "types found")
}
