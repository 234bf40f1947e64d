package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// testLengths covers every tail length around the vector widths (8, 16) and
// the unroll factors (32, 64), plus the model's own sizes.
var testLengths = func() []int {
	var ls []int
	for n := 0; n <= 70; n++ {
		ls = append(ls, n)
	}
	return append(ls, 127, 128, 129, 255, 288, 767, 768, 1376, 2049)
}()

// sentinel fills the guard cells around outputs; any write there is a bug.
var sentinel = float32(math.Float32frombits(0x7fc0dead)) // a NaN payload

// guarded returns a slice of n floats starting at offset off inside a buffer
// with guard cells on both sides, and a function checking the guards.
func guarded(t *testing.T, n, off int) ([]float32, func()) {
	const guard = 16
	buf := make([]float32, off+n+guard)
	for i := range buf {
		buf[i] = sentinel
	}
	s := buf[off : off+n : off+n]
	return s, func() {
		t.Helper()
		for i := 0; i < off; i++ {
			require.Equal(t, math.Float32bits(sentinel), math.Float32bits(buf[i]), "guard before out[0] at %d written", i-off)
		}
		for i := off + n; i < len(buf); i++ {
			require.Equal(t, math.Float32bits(sentinel), math.Float32bits(buf[i]), "guard after out at +%d written", i-off-n)
		}
	}
}

// randSlice returns n random floats in [-1, 1) at offset off of a larger
// buffer, so kernels see unaligned starts.
func randSlice(r *rand.Rand, n, off int) []float32 {
	buf := make([]float32, off+n+3)
	for i := range buf {
		buf[i] = r.Float32()*2 - 1
	}
	return buf[off : off+n]
}

// dotTol bounds the difference between two float32 evaluations of the same
// dot product in different summation orders. Each evaluation's error is at
// most about log2(n)*eps*Σ|x_i*y_i| for pairwise-ish orders and n*eps*Σ for
// the sequential reference (eps = 2^-24 ≈ 6e-8); with random inputs the
// errors behave like a random walk and stay far below that. 1e-5*Σ allows the
// worst sequential case up to n ≈ 170 and typical cases far beyond, while
// still catching a single dropped or doubled term (which shifts the result by
// ~Σ/n); the absolute 1e-6 covers Σ ≈ 0.
func dotTol(x, y []float32) float64 {
	var s float64
	for i := range x {
		s += math.Abs(float64(x[i]) * float64(y[i]))
	}
	return 1e-5*s + 1e-6
}

func requireClose(t *testing.T, want, got float32, tol float64, msgAndArgs ...any) {
	t.Helper()
	if d := math.Abs(float64(want) - float64(got)); !(d <= tol) {
		require.Failf(t, "not close", "want %v, got %v, |diff| %g > tol %g: %s", want, got, d, tol, fmt.Sprint(msgAndArgs...))
	}
}

func TestKernelImpls(t *testing.T) {
	impls := kernelImpls()
	require.Equal(t, "go", impls[len(impls)-1].name)
	t.Logf("implementations: %v (avx2+fma %v, avx512 %v, vnni %v)", implNames(), hasAVX2FMA, hasAVX512, hasVNNI)
}

func implNames() []string {
	var names []string
	for _, k := range kernelImpls() {
		names = append(names, k.name)
	}
	return names
}

// dispatchOnly limits the tests that take the dispatching functions as an
// implementation to them, while TestAmd64Dispatch runs those tests again
// with fewer CPU features (the implementations were tested already).
var dispatchOnly bool

// forEachImpl runs f for every implementation plus the dispatching functions.
func forEachImpl(t *testing.T, f func(t *testing.T, k kernelImpl)) {
	impls := append(kernelImpls(), kernelImpl{
		name: "dispatch", Dot: Dot, MatVec: MatVec, MatMat: MatMat, Axpy: Axpy, ScaleMul: ScaleMul,
		SiluMul: SiluMul, ExpSubSum: ExpSubSum, Maxf: Maxf, DivScalar: DivScalar,
		DotStrided: DotStrided, AxpyStrided: AxpyStrided,
	})
	if dispatchOnly {
		impls = impls[len(impls)-1:]
	}
	for _, k := range impls {
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

func TestDot(t *testing.T) {
	forEachImpl(t, func(t *testing.T, k kernelImpl) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, n := range testLengths {
			for _, off := range []int{0, 1, 3, 7, 15} {
				x, y := randSlice(r, n, off), randSlice(r, n+off%3, 16-off)
				requireClose(t, dotGeneric(x, y), k.Dot(x, y), dotTol(x, y), "n=", n, " off=", off)
			}
		}
	})
}

func TestAxpy(t *testing.T) {
	forEachImpl(t, func(t *testing.T, k kernelImpl) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, n := range testLengths {
			for _, off := range []int{0, 1, 5, 15} {
				a := r.Float32()*2 - 1
				x := randSlice(r, n, off)
				y, check := guarded(t, n, off)
				y0 := randSlice(r, n, 0)
				copy(y, y0)
				want := append([]float32(nil), y0...)
				axpyGeneric(a, x, want)
				k.Axpy(a, x, y)
				check()
				for i := range want {
					// One FMA vs multiply-then-add: differ by one rounding of a*x.
					requireClose(t, want[i], y[i], 1e-7*(math.Abs(float64(a*x[i]))+math.Abs(float64(y0[i])))+1e-7, "n=", n, " i=", i)
				}
			}
		}
	})
}

func TestScaleMul(t *testing.T) {
	forEachImpl(t, func(t *testing.T, k kernelImpl) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, n := range testLengths {
			for _, off := range []int{0, 2, 9, 15} {
				s := r.Float32() * 3
				w, x := randSlice(r, n+1, off), randSlice(r, n+2, off+1)
				out, check := guarded(t, n, off)
				want := make([]float32, n)
				scaleMulGeneric(want, w, x, s)
				k.ScaleMul(out, w, x, s)
				check()
				for i := range want {
					// Same operations in the same order: bit-identical.
					require.Equal(t, math.Float32bits(want[i]), math.Float32bits(out[i]), "n=%d i=%d", n, i)
				}
			}
		}
	})
}

func TestMatVec(t *testing.T) {
	forEachImpl(t, func(t *testing.T, k kernelImpl) {
		r := rand.New(rand.NewPCG(7, 8))
		check := func(rows, n, off int) {
			t.Helper()
			w := randSlice(r, rows*n, off)
			x := randSlice(r, n, 15-off)
			out, guards := guarded(t, rows, off)
			want := make([]float32, rows)
			matVecGeneric(want, w, x)
			k.MatVec(out, w, x)
			guards()
			for i := range want {
				requireClose(t, want[i], out[i], dotTol(w[i*n:(i+1)*n], x), "rows=", rows, " n=", n, " row=", i)
			}
		}
		for rows := 0; rows <= 9; rows++ {
			for _, n := range testLengths {
				check(rows, n, rows%16)
			}
		}
		for _, shape := range [][2]int{{288, 288}, {768, 288}, {37, 129}, {35, 2049}} {
			check(shape[0], shape[1], 3)
		}
	})
}

func TestMatMat(t *testing.T) {
	forEachImpl(t, func(t *testing.T, k kernelImpl) { testMatMat(t, k.MatMat) })
}

// testMatMat compares MatMat against the plain loop on odd shapes, offsets
// and batch sizes, with guard cells around out.
func testMatMat(t *testing.T, MatMat func(out, w, x []float32, batch int)) {
	r := rand.New(rand.NewPCG(9, 10))
	check := func(batch, rows, n, off int) {
		t.Helper()
		w := randSlice(r, rows*n, off)
		x := randSlice(r, batch*n, 15-off)
		out, guards := guarded(t, batch*rows, off)
		want := make([]float32, batch*rows)
		matMatGeneric(want, w, x, batch)
		MatMat(out, w, x, batch)
		guards()
		for b := 0; b < batch; b++ {
			for i := 0; i < rows; i++ {
				requireClose(t, want[b*rows+i], out[b*rows+i], dotTol(w[i*n:(i+1)*n], x[b*n:(b+1)*n]),
					"batch=", batch, " rows=", rows, " n=", n, " b=", b, " row=", i)
			}
		}
	}
	for batch := 1; batch <= 9; batch++ {
		for _, rows := range []int{1, 2, 3, 4, 5, 7, 8, 9, 13} {
			for _, n := range []int{0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 47, 64, 65, 129, 288} {
				check(batch, rows, n, (batch+rows+n)%16)
			}
		}
	}
	check(0, 5, 0, 0)
	// Big enough that the batch is split into several cache chunks, with
	// every remainder of tiles of 2, 3 and 4 vectors in the last chunk.
	check(135, 9, 1031, 1)
	check(136, 9, 1031, 2)
	check(137, 17, 1031, 3)
	check(17, 288, 288, 4)
	check(7, 16, 2048, 5)
	// Rows long enough to be cut into two and three blocks of their length.
	check(130, 9, 1376, 6)
	// TinyLlama's w2 rows, a 64-token prompt: passes of 24, 24, 16 vectors.
	check(64, 9, 5632, 7)
	check(5, 17, 3001, 7)
}

// TestKernelsPanicOnShortSlices checks the dispatching functions reject
// lengths that would make the assembly read or write out of bounds.
func TestKernelsPanicOnShortSlices(t *testing.T) {
	s := make([]float32, 8)
	require.Panics(t, func() { Dot(s, s[:7]) })
	require.Panics(t, func() { Axpy(1, s, s[:7]) })
	require.Panics(t, func() { ScaleMul(s, s[:7], s, 1) })
	require.Panics(t, func() { MatVec(s[:3], s[:8], s[:3]) })
	require.Panics(t, func() { MatMat(s[:4], s[:3], s[:4], 2) })
	require.Panics(t, func() { MatMat(s[:3], s, s[:4], 2) })
}

// Benchmarks on the shapes of the stories models (dim 288/768, hidden
// 768/2048, vocab 32000). SetBytes counts the bytes of w streamed, so the MB/s
// column is the weight bandwidth; GFLOP/s is reported as a metric.

func benchImpls(b *testing.B, f func(b *testing.B, k kernelImpl)) {
	for _, k := range kernelImpls() {
		b.Run(k.name, func(b *testing.B) { f(b, k) })
	}
}

func benchData(n int) []float32 {
	r := rand.New(rand.NewPCG(uint64(n), 11))
	return randSlice(r, n, 0)
}

func reportFlops(b *testing.B, flopsPerOp float64) {
	b.ReportMetric(flopsPerOp*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

var sinkF32 float32

func BenchmarkDot(b *testing.B) {
	for _, n := range []int{48, 288, 768} {
		x, y := benchData(n), benchData(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			benchImpls(b, func(b *testing.B, k kernelImpl) {
				b.SetBytes(int64(8 * n))
				for b.Loop() {
					sinkF32 += k.Dot(x, y)
				}
				reportFlops(b, float64(2*n))
			})
		})
	}
}

func BenchmarkAxpy(b *testing.B) {
	for _, n := range []int{48, 288, 768} {
		x, y := benchData(n), benchData(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			benchImpls(b, func(b *testing.B, k kernelImpl) {
				b.SetBytes(int64(12 * n))
				for b.Loop() {
					k.Axpy(1e-6, x, y)
				}
			})
		})
	}
}

func BenchmarkScaleMul(b *testing.B) {
	for _, n := range []int{288, 768} {
		w, x, out := benchData(n), benchData(n), make([]float32, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			benchImpls(b, func(b *testing.B, k kernelImpl) {
				b.SetBytes(int64(12 * n))
				for b.Loop() {
					k.ScaleMul(out, w, x, 0.5)
				}
			})
		})
	}
}

func BenchmarkMatVec(b *testing.B) {
	for _, s := range [][2]int{{288, 288}, {768, 288}, {288, 768}, {32000, 288},
		{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}} {
		m, n := s[0], s[1]
		w, x, out := benchData(m*n), benchData(n), make([]float32, m)
		b.Run(fmt.Sprintf("%dx%d", m, n), func(b *testing.B) {
			benchImpls(b, func(b *testing.B, k kernelImpl) {
				b.SetBytes(int64(4 * m * n))
				for b.Loop() {
					k.MatVec(out, w, x)
				}
				reportFlops(b, float64(2*m*n))
			})
		})
	}
}

func BenchmarkMatMat(b *testing.B) {
	const batch = 128
	for _, s := range [][2]int{{768, 288}, {2048, 768}, {768, 2048}, {288, 288}, {32000, 288}} {
		m, n := s[0], s[1]
		w, x, out := benchData(m*n), benchData(batch*n), make([]float32, batch*m)
		b.Run(fmt.Sprintf("%dx%dx%d", m, n, batch), func(b *testing.B) {
			benchImpls(b, func(b *testing.B, k kernelImpl) {
				b.SetBytes(int64(4 * m * n))
				for b.Loop() {
					k.MatMat(out, w, x, batch)
				}
				reportFlops(b, float64(2*m*n*batch))
			})
		})
	}
}

// TestBalancedChunk: passes as few as the limit allows, of about equal
// size, never over the limit, a multiple of mult.
func TestBalancedChunk(t *testing.T) {
	require.Equal(t, 33, balancedChunk(64, 63, 3), "63 + 1 becomes 33 + 31")
	require.Equal(t, 45, balancedChunk(128, 63, 3))
	require.Equal(t, 63, balancedChunk(40, 63, 3), "one pass")
	require.Equal(t, 2, balancedChunk(0, 2, 2))
	for limit := 2; limit <= 24; limit += 2 {
		for mult := 1; mult <= 3; mult++ {
			if limit%mult != 0 {
				continue
			}
			for batch := 1; batch <= 100; batch++ {
				c := balancedChunk(batch, limit, mult)
				require.LessOrEqual(t, c, limit)
				require.Zero(t, c%mult)
				passes, want := (batch+c-1)/c, (batch+limit-1)/limit
				require.Equal(t, want, passes, "batch %d limit %d mult %d", batch, limit, mult)
				if passes > 1 {
					last := batch - (passes-1)*c
					require.GreaterOrEqual(t, last, c-passes*mult, "batch %d limit %d mult %d: last pass %d of %d", batch, limit, mult, last, c)
				}
			}
		}
	}
}

func TestMatVecSteps(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{1, 7, 16, 33, 100, 768 + 5} {
		for _, rows := range []int{4, 9, 23, 64, 101} {
			w, x := randSlice(r, rows*n, 0), randSlice(r, n, 0)
			want := make([]float32, rows)
			MatVec(want, w, x)
			for i := range want {
				requireClose(t, dotGeneric(w[i*n:(i+1)*n], x), want[i], dotTol(w[i*n:(i+1)*n], x), "n ", n, " rows ", rows, " row ", i)
			}
			q := rows / 4
			for _, piece := range []int{1, 2, 5, q} {
				got := make([]float32, rows)
				for i := range got {
					got[i] = float32(math.NaN())
				}
				for a := 0; a < q; a += piece {
					MatVecSteps(got, w, x, q, a, min(a+piece, q))
				}
				for i := range 4 * q {
					if MatVecRowInvariant() {
						require.Equal(t, math.Float32bits(want[i]), math.Float32bits(got[i]), "n %d rows %d piece %d row %d", n, rows, piece, i)
					} else { // arm64: no plans, but the rows still right
						requireClose(t, want[i], got[i], 2*dotTol(w[i*n:(i+1)*n], x), "n ", n, " rows ", rows, " piece ", piece, " row ", i)
					}
				}
				for i := 4 * q; i < rows; i++ {
					require.True(t, math.IsNaN(float64(got[i])), "row %d is not in the quarters", i)
				}
			}
		}
	}
	require.Panics(t, func() { MatVecSteps(make([]float32, 8), make([]float32, 8), []float32{1}, 2, 1, 3) })
	require.Panics(t, func() { MatVecSteps(make([]float32, 7), make([]float32, 8), []float32{1}, 2, 0, 2) })
}
