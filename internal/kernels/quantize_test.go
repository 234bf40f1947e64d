package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// quantizeRef is the plain loop every quantizeGroups implementation must
// equal bit for bit: QuantizeQ8 with C's rounding, then blockSums.
func quantizeRef(x []float32, gs int) ([]int8, []float32, []int32) {
	q, s := make([]int8, len(x)), make([]float32, (len(x)+gs-1)/gs)
	QuantizeQ8(q, s, x, gs, RoundHalfAwayFromZero)
	sums := make([]int32, len(x)/QBlock)
	blockSums(sums, q)
	return q, s, sums
}

// quantizeFills are the kinds of input of TestQuantizeGroups. Each sets x
// (whose groups are gs values) from r; most make the scales exact or
// known so that the quotients land on or next to ties.
var quantizeFills = []struct {
	name string
	fill func(r *rand.Rand, x []float32, gs int)
}{
	{"normal", func(r *rand.Rand, x []float32, gs int) {
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
	}},
	{"ties", func(r *rand.Rand, x []float32, gs int) {
		// Scale 1 (each group holds ±127): every half step from -127 to
		// 127, ties k+0.5 included, and the extremes.
		for i := range x {
			x[i] = float32(r.IntN(509)-254) / 2
			if i%gs == 0 {
				x[i] = float32(127 * (1 - 2*r.IntN(2)))
			}
		}
	}},
	{"near half", func(r *rand.Rand, x []float32, gs int) {
		// Scale 1, quotients one ulp either side of the ties: 0.49999997
		// must round to 0 (in float32, 0.49999997+0.5 rounds to 1).
		for i := range x {
			k := float32(r.IntN(127))
			y := math.Nextafter32(k+0.5, float32(r.IntN(2))*1000)
			if r.IntN(2) == 0 {
				y = -y
			}
			x[i] = y
			if i%gs == 0 {
				x[i] = 127
			}
		}
	}},
	{"scaled ties", func(r *rand.Rand, x []float32, gs int) {
		// A random scale per group, and values (k+0.5)*scale rounded to
		// float32 and their neighbours: quotients on and around ties.
		var scale float32
		for i := range x {
			if i%gs == 0 {
				m := float32(math.Ldexp(1+r.Float64(), r.IntN(40)-20))
				scale = m / 127
				x[i] = m
				continue
			}
			k := float32(r.IntN(254) - 127)
			v := (k + 0.5) * scale
			switch r.IntN(3) {
			case 0:
				v = math.Nextafter32(v, 0)
			case 1:
				v = math.Nextafter32(v, 2*v)
			}
			x[i] = v
		}
	}},
	{"tiny", func(r *rand.Rand, x []float32, gs int) {
		// Subnormal scales, zero scales (max below 64 times the smallest
		// subnormal), and quotients past 127 that wrap in int8.
		for i := range x {
			x[i] = math.Float32frombits(uint32(r.IntN(200)))
			if r.IntN(2) == 0 {
				x[i] = -x[i]
			}
		}
	}},
	{"huge", func(r *rand.Rand, x []float32, gs int) {
		for i := range x {
			x[i] = float32(r.Float64()*2-1) * 3e38 // up to near MaxFloat32
		}
	}},
	{"zero groups", func(r *rand.Rand, x []float32, gs int) {
		// Every other group zeros (some -0), the others random.
		for i := range x {
			x[i] = float32(r.NormFloat64())
			if i/gs%2 == 0 {
				x[i] = float32(math.Copysign(0, float64(x[i])))
			}
		}
	}},
	{"extremes", func(r *rand.Rand, x []float32, gs int) {
		// Only ±max: every value is ±127.
		for i := range x {
			x[i] = float32(3.5 * float64(1-2*r.IntN(2)))
		}
	}},
}

// quantizeGroupSizes returns the group sizes tried for n values: below,
// at and above the vector width, the block size, the models' group sizes,
// and one group of all n.
func quantizeGroupSizes(n int) []int {
	return []int{1, 3, 15, 16, 17, 32, 33, 64, qkK, max(n, 1)}
}

// TestQuantizeGroups holds every implementation to quantizeRef, bit for bit,
// with guard cells around q, s and sums and unaligned starts, for every
// length up to 70 and some larger ones, with and without the block sums.
func TestQuantizeGroups(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	const qGuard = 16
	const qSentinel = int8(0x5a)
	for _, impl := range quantizeImpls() {
		for _, n := range append(testLengths, 2048, 5632) {
			for _, gs := range quantizeGroupSizes(n) {
				for _, fill := range quantizeFills {
					xoff, qoff := n%4, n%7
					x := randSlice(r, n, xoff)
					fill.fill(r, x, gs)
					wantQ, wantS, wantSums := quantizeRef(x, gs)
					withSums := []bool{false}
					if gs%QBlock == 0 && n%QBlock == 0 {
						withSums = append(withSums, true)
					}
					for _, sums := range withSums {
						msg := fmt.Sprintf("%s n=%d gs=%d %s sums=%v", impl.name, n, gs, fill.name, sums)
						qbuf := make([]int8, qoff+n+qGuard)
						for i := range qbuf {
							qbuf[i] = qSentinel
						}
						q := qbuf[qoff : qoff+n]
						s, checkS := guarded(t, len(wantS), n%3)
						sumBuf := make([]int32, len(wantSums)+2)
						for i := range sumBuf {
							sumBuf[i] = -12345
						}
						var gotSums []int32
						if sums {
							gotSums = sumBuf[1 : 1+len(wantSums)]
						}
						require.True(t, impl.quantize(q, s, gotSums, x, gs), msg)
						require.Equal(t, wantQ, q, msg)
						for g := range wantS {
							require.Equal(t, math.Float32bits(wantS[g]), math.Float32bits(s[g]), "%s: scale %d", msg, g)
						}
						if sums {
							require.Equal(t, wantSums, gotSums, msg)
						}
						checkS()
						for i, v := range qbuf {
							if i < qoff || i >= qoff+n {
								require.Equal(t, qSentinel, v, "%s: q guard at %d written", msg, i-qoff)
							}
						}
						if sums {
							require.Equal(t, int32(-12345), sumBuf[0], msg)
							require.Equal(t, int32(-12345), sumBuf[len(sumBuf)-1], msg)
						}
					}
				}
			}
		}
	}
}

// TestQuantizeGroupsNotFinite: a NaN or an infinity at any position makes
// every implementation report false (and the callers fall back to
// QuantizeQ8).
func TestQuantizeGroupsNotFinite(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	lengths := testLengths[1:72] // 1..70 and 127
	lengths = append(lengths, 256, 1376)
	for _, impl := range quantizeImpls() {
		for _, n := range lengths {
			for _, gs := range []int{1, 16, 32, 64, n} {
				x := randSlice(r, n, n%4)
				q, s := make([]int8, n), make([]float32, (n+gs-1)/gs)
				var sums []int32
				if gs%QBlock == 0 && n%QBlock == 0 {
					sums = make([]int32, n/QBlock)
				}
				require.True(t, impl.quantize(q, s, sums, x, gs), "%s n=%d gs=%d", impl.name, n, gs)
				for pos := range x {
					v := x[pos]
					for _, b := range bad {
						x[pos] = b
						require.False(t, impl.quantize(q, s, sums, x, gs), "%s n=%d gs=%d: %v at %d", impl.name, n, gs, b, pos)
					}
					x[pos] = v
				}
			}
		}
	}
}

// TestQuantizeCallersNotFinite: QuantizeActivation, QuantizeBlocks and
// QuantizeSuperBlocks give QuantizeQ8's result whole when x holds a NaN
// or an infinity (the scale of its group is NaN or Inf, the other groups
// are quantized as usual).
func TestQuantizeCallersNotFinite(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	const n = 1376
	for _, b := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		x := randSlice(r, n, 1)
		x[300] = b
		nb := n / QBlock
		for _, gs := range []int{32, 64} {
			wantQ, wantS, _ := quantizeRef(x, gs)
			q, s := make([]int8, n), make([]float32, len(wantS))
			QuantizeActivation(q, s, x, gs)
			require.Equal(t, wantQ, q)
			require.Equal(t, fmt.Sprint(wantS), fmt.Sprint(s))
		}
		wantQ, wantS, wantSums := quantizeRef(x, QBlock)
		q, s, sums := make([]int8, n), make([]float32, nb), make([]int32, nb)
		QuantizeBlocks(q, s, sums, x)
		require.Equal(t, wantQ, q)
		require.Equal(t, fmt.Sprint(wantS), fmt.Sprint(s))
		require.Equal(t, wantSums, sums)
		wantQ, wantS, wantSums = quantizeRef(x, qkK)
		QuantizeSuperBlocks(q, s, sums, x)
		require.Equal(t, wantQ, q)
		for blk := range nb {
			require.Equal(t, math.Float32bits(wantS[blk*QBlock/qkK]), math.Float32bits(s[blk]), "block %d", blk)
		}
		require.Equal(t, wantSums, sums)
	}
}

func TestQuantizeGroupsChecksLengths(t *testing.T) {
	x := make([]float32, 64)
	q, s, sums := make([]int8, 64), make([]float32, 2), make([]int32, 2)
	require.Panics(t, func() { quantizeGroups(q, s, sums, x, 0) })
	require.Panics(t, func() { quantizeGroups(q[:63], s, sums, x, 32) })
	require.Panics(t, func() { quantizeGroups(q, s[:1], sums, x, 32) })
	require.Panics(t, func() { quantizeGroups(q, s, sums[:1], x, 32) })
	require.Panics(t, func() { quantizeGroups(q, s, sums, x, 16) })
	require.Panics(t, func() { quantizeGroups(q, s, sums, x[:48], 48) })
	require.True(t, quantizeGroups(q, s, sums, x, 32))
	require.True(t, quantizeGroups(q, s, nil, x[:48], 24))
}

// BenchmarkQuantize: the activation quantizer of every implementation on
// the stories42M/TinyLlama widths (2048) and a TinyLlama hidden layer
// (5632), in the GGUF blocks' form (groups of 32 with the block sums) and
// in llama2.c Q8_0's (groups of 64, no sums).
func BenchmarkQuantize(b *testing.B) {
	r := rand.New(rand.NewPCG(47, 48))
	for _, n := range []int{2048, 5632} {
		x := randSlice(r, n, 0)
		q, s, sums := make([]int8, n), make([]float32, n/QBlock), make([]int32, n/QBlock)
		for _, impl := range quantizeImpls() {
			b.Run(fmt.Sprintf("blocks/n=%d/%s", n, impl.name), func(b *testing.B) {
				b.SetBytes(int64(4 * n))
				for b.Loop() {
					impl.quantize(q, s, sums, x, QBlock)
				}
			})
			b.Run(fmt.Sprintf("gs64/n=%d/%s", n, impl.name), func(b *testing.B) {
				b.SetBytes(int64(4 * n))
				for b.Loop() {
					impl.quantize(q, s, nil, x, 64)
				}
			})
		}
	}
}
