package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// q8Case is a random Q8_0 matrix and activation.
type q8Case struct {
	wq []int8
	ws []float32
	xq []int8
	xs []float32
}

// newQ8Case quantizes random weights (total values) and a random activation
// of n values in groups of gs, as the model does.
func newQ8Case(r *rand.Rand, total, n, gs int) q8Case {
	c := q8Case{
		wq: make([]int8, total), ws: make([]float32, (total+gs-1)/gs),
		xq: make([]int8, n), xs: make([]float32, (n+gs-1)/gs),
	}
	QuantizeQ8(c.wq, c.ws, randomFloats(r, total), gs, RoundHalfEven)
	QuantizeQ8(c.xq, c.xs, randomFloats(r, n), gs, RoundHalfAwayFromZero)
	return c
}

// checkQ8Impls runs every implementation on rows [off/n ...) of c and
// requires exactly the plain loop's result, with guard cells around out
// untouched.
func checkQ8Impls(t *testing.T, c q8Case, off, gs, rows int, msg string) {
	t.Helper()
	want := make([]float32, rows)
	matVecQ8Generic(want, c.wq, c.ws, off, gs, c.xq, c.xs)
	const guard = 5
	const sentinel = float32(-12345.5)
	buf := make([]float32, rows+2*guard)
	for _, impl := range q8Impls() {
		for i := range buf {
			buf[i] = sentinel
		}
		out := buf[guard : guard+rows]
		impl.MatVec(out, c.wq, c.ws, off, gs, c.xq, c.xs)
		for i := range want {
			// Bit-identical (NaN never occurs here), see q8.go.
			if math.Float32bits(out[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s %s: row %d = %v, want %v", impl.name, msg, i, out[i], want[i])
			}
		}
		for i := 0; i < guard; i++ {
			require.Equal(t, sentinel, buf[i], "%s %s: guard before out", impl.name, msg)
			require.Equal(t, sentinel, buf[guard+rows+i], "%s %s: guard after out", impl.name, msg)
		}
	}
}

// checkQ8Dispatch checks MatVecQ8 and MatMatQ8Tiles, as the flags of
// cpu.go dispatch them, against the plain loop, bit for bit, on shapes of
// several group sizes, and returns how many vectors the tiles computed.
func checkQ8Dispatch(t *testing.T, r *rand.Rand) (tiled int) {
	t.Helper()
	same := func(want, got []float32, msg string, args ...any) {
		t.Helper()
		for i := range want {
			if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
				t.Fatalf("%s: row %d = %v, want %v", fmt.Sprintf(msg, args...), i, got[i], want[i])
			}
		}
	}
	for _, gs := range []int{16, 32, 64} {
		for _, n := range []int{64, 192, 288} {
			if n%gs != 0 {
				continue
			}
			for _, rows := range []int{1, 4, 7, 12} {
				c := newQ8Case(r, (rows+1)*n, n, gs)
				want, got := make([]float32, rows), make([]float32, rows)
				matVecQ8Generic(want, c.wq, c.ws, n, gs, c.xq, c.xs)
				MatVecQ8(got, c.wq, c.ws, n, gs, c.xq, c.xs)
				same(want, got, "MatVecQ8 gs=%d n=%d rows=%d", gs, n, rows)

				const batch = 5
				xq, xs := make([]int8, batch*n), make([]float32, batch*n/gs)
				QuantizeActivation(xq, xs, randSlice(r, batch*n, 0), gs)
				out := make([]float32, batch*rows)
				done := MatMatQ8Tiles(out, c.wq[n:], c.ws[n/gs:], rows, gs, xq, xs, batch)
				for b := range done {
					matVecQ8Generic(want, c.wq, c.ws, n, gs, xq[b*n:(b+1)*n], xs[b*n/gs:(b+1)*n/gs])
					same(want, out[b*rows:(b+1)*rows], "MatMatQ8Tiles gs=%d n=%d rows=%d vector %d", gs, n, rows, b)
				}
				tiled += done
			}
		}
	}
	return tiled
}

func TestMatVecQ8Impls(t *testing.T) {
	t.Logf("implementations: %v (avx2+fma %v, avx512 %v, vnni %v)", q8ImplNames(), hasAVX2FMA, hasAVX512, hasVNNI)
	r := rand.New(rand.NewPCG(7, 8))
	for _, gs := range []int{32, 64} {
		for _, n := range []int{32, 64, 96, 288, 512, 768, 1376, 2048} {
			if n%gs != 0 {
				continue
			}
			maxRows := 9
			c := newQ8Case(r, (maxRows+4)*n, n, gs)
			for rows := 1; rows <= maxRows; rows++ {
				for _, startRow := range []int{0, 1, 2, 3, 4} {
					off := startRow * n
					checkQ8Impls(t, c, off, gs, rows, fmt.Sprintf("gs=%d n=%d rows=%d off=%d", gs, n, rows, off))
				}
			}
		}
	}
}

// Shapes the fast paths must hand to the plain loop: groups that straddle
// rows (hidden_dim 172 with gs 64: stories260K), rows that start inside a
// group, group sizes the assembly does not take (16, 96 on VNNI, 128 and 3).
func TestMatVecQ8Fallbacks(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	cases := []struct{ gs, n, off int }{
		{64, 172, 0}, {64, 172, 172}, {64, 172, 5 * 172},
		{32, 288, 16}, {32, 288, 1}, {64, 64, 32}, {64, 768, 100},
		{16, 288, 0}, {16, 288, 16 * 3}, {96, 288, 0}, {96, 288, 288},
		{128, 768, 0}, {128, 768, 768}, {256, 2048, 0}, {3, 288, 0}, {3, 10, 6},
		{64, 32, 0}, {1, 7, 3},
	}
	for _, tc := range cases {
		for rows := 1; rows <= 9; rows++ {
			c := newQ8Case(r, tc.off+rows*tc.n+tc.gs, tc.n, tc.gs)
			checkQ8Impls(t, c, tc.off, tc.gs, rows, fmt.Sprintf("gs=%d n=%d rows=%d off=%d", tc.gs, tc.n, rows, tc.off))
		}
	}
}

// Zero groups (scale 0, values 0), in the weights and in the activation, and
// the largest magnitudes the quantizer writes (±127 everywhere: int32 sums
// up to 64*127*127 per group, int16 pairs up to 2*127*127 on AVX2).
func TestMatVecQ8Extremes(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, gs := range []int{32, 64} {
		for _, n := range []int{96, 288, 768} {
			if n%gs != 0 {
				continue
			}
			rows := 8
			c := newQ8Case(r, rows*n, n, gs)
			// Zero groups: every third weight group, the activation's first.
			for g := 0; g < len(c.ws); g += 3 {
				c.ws[g] = 0
				clear(c.wq[g*gs : (g+1)*gs])
			}
			c.xs[0] = 0
			clear(c.xq[:gs])
			checkQ8Impls(t, c, 0, gs, rows, fmt.Sprintf("zeros gs=%d n=%d", gs, n))

			for _, sign := range [][2]int8{{127, 127}, {127, -127}, {-127, -127}, {-127, 127}} {
				for i := range c.wq {
					c.wq[i] = sign[0]
				}
				for i := range c.xq {
					c.xq[i] = sign[1]
				}
				for i := range c.ws {
					c.ws[i] = 1
				}
				for i := range c.xs {
					c.xs[i] = 1.5
				}
				checkQ8Impls(t, c, 0, gs, rows, fmt.Sprintf("extreme %v gs=%d n=%d", sign, gs, n))
			}
		}
	}
}

// -128 only appears in crafted files. The kernels may then compute a wrong
// value but must run normally and write only out.
func TestMatVecQ8MinusOneTwentyEight(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, gs := range []int{32, 64} {
		n, rows := 256, 6
		c := newQ8Case(r, rows*n, n, gs)
		for i := range c.wq {
			if i%3 == 0 {
				c.wq[i] = -128
			}
		}
		for i := range c.xq {
			if i%5 == 0 {
				c.xq[i] = -128
			}
		}
		for _, impl := range q8Impls() {
			buf := make([]float32, rows+2)
			impl.MatVec(buf[1:rows+1], c.wq, c.ws, 0, gs, c.xq, c.xs)
			require.Zero(t, buf[0], impl.name)
			require.Zero(t, buf[rows+1], impl.name)
			for _, v := range buf[1 : rows+1] {
				require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), impl.name)
			}
		}
	}
}

func TestMatVecQ8NoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	c := newQ8Case(r, 16*288, 288, 32)
	out := make([]float32, 16)
	for _, impl := range q8Impls() {
		allocs := testing.AllocsPerRun(10, func() {
			impl.MatVec(out, c.wq, c.ws, 0, 32, c.xq, c.xs)
		})
		require.Zero(t, allocs, impl.name)
	}
	allocs := testing.AllocsPerRun(10, func() { MatVecQ8(out[:15], c.wq, c.ws, 288, 32, c.xq, c.xs) })
	require.Zero(t, allocs)
}

func q8ImplNames() []string {
	var names []string
	for _, impl := range q8Impls() {
		names = append(names, impl.name)
	}
	return names
}

// Kernel benchmarks on the stories shapes: go test -run '^$' -bench MatVecQ8.
// The throughput counts the bytes streamed: the int8 weights and their
// scales.
func BenchmarkMatVecQ8(b *testing.B) {
	shapes := []struct{ rows, cols, gs int }{
		{288, 288, 32}, {768, 288, 32}, {288, 768, 32}, {32000, 288, 32},
		{768, 768, 64}, {2048, 768, 64}, {768, 2048, 64}, {32000, 768, 64},
		{512, 1376, 32},
		{768, 768, 32}, {2048, 768, 32},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range shapes {
		c := newQ8Case(r, s.rows*s.cols, s.cols, s.gs)
		out := make([]float32, s.rows)
		for _, impl := range q8Impls() {
			b.Run(fmt.Sprintf("%dx%d/gs%d/%s", s.rows, s.cols, s.gs, impl.name), func(b *testing.B) {
				b.SetBytes(int64(s.rows*s.cols + 4*len(c.ws)))
				for b.Loop() {
					impl.MatVec(out, c.wq, c.ws, 0, s.gs, c.xq, c.xs)
				}
			})
		}
	}
}

// BenchmarkMatVecQ8DRAM streams a 320 MB Q8_0 matrix (larger than the L3 of
// the machines we run on) against the fp32 kernel on as many bytes: the
// weights come from memory, as for a 110M model on most machines. It
// allocates 640 MB, so it only runs with LLAMA2_BENCH_DRAM=1.
func BenchmarkMatVecQ8DRAM(b *testing.B) {
	if os.Getenv("LLAMA2_BENCH_DRAM") == "" {
		b.Skip("set LLAMA2_BENCH_DRAM=1 to run")
	}
	const rows, cols, gs = 160000, 2048, 64
	r := rand.New(rand.NewPCG(3, 4))
	c := newQ8Case(r, 1<<20, cols, gs)
	wq := make([]int8, rows*cols)
	for i := range wq {
		wq[i] = c.wq[i&(1<<20-1)]
	}
	ws := make([]float32, rows*cols/gs)
	for i := range ws {
		ws[i] = c.ws[i&(1<<14-1)]
	}
	out := make([]float32, rows)
	for _, impl := range q8Impls() {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(wq) + 4*len(ws)))
			for b.Loop() {
				impl.MatVec(out, wq, ws, 0, gs, c.xq, c.xs)
			}
		})
	}
	wf := make([]float32, rows*cols/4)
	for i := range wf {
		wf[i] = float32(i % 7)
	}
	x := make([]float32, cols)
	b.Run("fp32", func(b *testing.B) {
		b.SetBytes(int64(4 * len(wf)))
		for b.Loop() {
			MatVec(out[:rows/4], wf, x)
		}
	})
}

// QuantizeActivation must be QuantizeQ8 with C's rounding, bit for bit.
func TestQuantizeActivationMatchesQuantizeQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	check := func(x []float32, gs int, msg string) {
		t.Helper()
		ng := (len(x) + gs - 1) / gs
		q1, s1 := make([]int8, len(x)), make([]float32, ng)
		q2, s2 := make([]int8, len(x)), make([]float32, ng)
		QuantizeQ8(q1, s1, x, gs, RoundHalfAwayFromZero)
		QuantizeActivation(q2, s2, x, gs)
		require.Equal(t, q1, q2, "%s gs=%d", msg, gs)
		for i := range s1 {
			require.Equal(t, math.Float32bits(s1[i]), math.Float32bits(s2[i]), "%s gs=%d scale %d", msg, gs, i)
		}
	}
	for _, gs := range []int{1, 3, 32, 64} {
		for _, n := range []int{1, 5, 64, 172, 288, 1000} {
			check(randomFloats(r, n), gs, "normal")
			// Ties: multiples of half a step, scale 1 (max 127).
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.IntN(255)-127) / 2
				if i%gs == 0 {
					x[i] = 127
				}
			}
			check(x, gs, "ties")
			// Tiny (subnormal scales), huge, zeros, NaN and infinities.
			for i := range x {
				x[i] = float32(r.NormFloat64()) * 1e-43
			}
			check(x, gs, "subnormal")
			for i := range x {
				x[i] = float32(r.NormFloat64()) * 1e38
			}
			check(x, gs, "huge")
			clear(x)
			check(x, gs, "zeros")
			x[n/2] = float32(math.Inf(-1))
			check(x, gs, "inf")
		}
	}
	// NaN: compare the scales' NaN-ness and the other groups only (the int8
	// of a NaN is whatever the conversion gives, the same in both).
	x := randomFloats(r, 128)
	x[70] = float32(math.NaN())
	q1, s1 := make([]int8, 128), make([]float32, 4)
	q2, s2 := make([]int8, 128), make([]float32, 4)
	QuantizeQ8(q1, s1, x, 32, RoundHalfAwayFromZero)
	QuantizeActivation(q2, s2, x, 32)
	require.Equal(t, q1, q2)
	require.True(t, math.IsNaN(float64(s2[2])))
}

func BenchmarkQuantizeActivation(b *testing.B) {
	x := randomFloats(rand.New(rand.NewPCG(1, 1)), 2048)
	q, s := make([]int8, len(x)), make([]float32, len(x)/32)
	b.Run("QuantizeQ8", func(b *testing.B) {
		for b.Loop() {
			QuantizeQ8(q, s, x, 32, RoundHalfAwayFromZero)
		}
	})
	b.Run("QuantizeActivation", func(b *testing.B) {
		for b.Loop() {
			QuantizeActivation(q, s, x, 32)
		}
	})
}

func randomFloats(r *rand.Rand, n int) []float32 {
	f := make([]float32, n)
	for i := range f {
		f[i] = float32(r.NormFloat64())
	}
	return f
}

// plainDotQ8 is the definition of dotQ8 written index by index: a run ends
// wherever the weight group or the activation group of the next index
// differs.
func plainDotQ8(wq []int8, ws []float32, off, gs int, xq []int8, xs []float32) float32 {
	var total float32
	var sum int32
	for k := range xq {
		sum += int32(wq[k]) * int32(xq[k])
		last := k == len(xq)-1
		if last || (off+k+1)/gs != (off+k)/gs || (k+1)/gs != k/gs {
			// The conversions round each product, as dotQ8's do: without
			// them the compiler may fuse the second multiply with the
			// addition (it does on arm64), which dotQ8 promises not to do.
			total += float32(float32(float32(sum)*ws[(off+k)/gs]) * xs[k/gs])
			sum = 0
		}
	}
	return total
}

func TestDotQ8MatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, gs := range []int{1, 3, 4, 32, 64} {
		for _, n := range []int{1, 2, 7, 31, 63, 64, 65, 172, 288} {
			for _, off := range []int{0, 1, 5, 63, 64 * 3} {
				w := randomFloats(r, off+n+gs)
				x := randomFloats(r, n)
				wq, ws := make([]int8, len(w)), make([]float32, (len(w)+gs-1)/gs)
				xq, xs := make([]int8, n), make([]float32, (n+gs-1)/gs)
				QuantizeQ8(wq, ws, w, gs, RoundHalfEven)
				QuantizeQ8(xq, xs, x, gs, RoundHalfAwayFromZero)
				got := dotQ8(wq[off:], ws, off, gs, xq, xs)
				require.Equal(t, plainDotQ8(wq[off:], ws, off, gs, xq, xs), got, "gs=%d n=%d off=%d", gs, n, off)
				// And it approximates the float dot product: each value is off
				// by at most half its group's step (max|v|/254).
				var exact, bound float64
				for i := range x {
					exact += float64(w[off+i]) * float64(x[i])
					bound += math.Abs(float64(ws[(off+i)/gs]*127)*float64(xs[i/gs]*127)) * (2.0/254 + 1.0/254/254)
				}
				require.InDelta(t, exact, float64(got), bound+1e-4, "gs=%d n=%d off=%d", gs, n, off)

				out := make([]float32, 3)
				rows := make([]int8, off+3*n)
				rs := make([]float32, (off+3*n+gs-1)/gs)
				QuantizeQ8(rows, rs, randomFloats(r, off+3*n), gs, RoundHalfEven)
				MatVecQ8(out, rows, rs, off, gs, xq, xs)
				for i := range out {
					o := off + i*n
					require.Equal(t, plainDotQ8(rows[o:o+n], rs, o, gs, xq, xs), out[i])
				}
			}
		}
	}
}

func TestQuantizeQ8(t *testing.T) {
	q := make([]int8, 7)
	s := make([]float32, 3)
	// Groups of 3: zeros; a tie at .5 after scaling; a short last group.
	QuantizeQ8(q, s, []float32{0, 0, 0, 127, 0.5, -1.5, 2}, 3, RoundHalfEven)
	require.Equal(t, []float32{0, 1, 2.0 / 127}, s)
	require.Equal(t, []int8{0, 0, 0, 127, 0, -2, 127}, q)
	QuantizeQ8(q, s, []float32{0, 0, 0, 127, 0.5, -1.5, 2}, 3, RoundHalfAwayFromZero)
	require.Equal(t, []int8{0, 0, 0, 127, 1, -2, 127}, q)
}
