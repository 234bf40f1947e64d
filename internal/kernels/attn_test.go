package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// ulpDiff is the distance in units in the last place between two
// non-negative float32s (exp's results): the number of floats between them.
func ulpDiff(a, b float32) int64 {
	return int64(math.Float32bits(a)) - int64(math.Float32bits(b))
}

// expTestPoints returns the exp inputs of the accuracy test: a sweep of every
// 97th float32 in [-110, 95] (about 22 million points: the float spacing is
// far below exp's sensitivity, so this samples every binade and every
// reduction interval densely), random points in the softmax range, and the
// edges: overflow, underflow into the denormals, ±0, ±Inf, NaN.
func expTestPoints() []float32 {
	var xs []float32
	for _, lim := range []float32{95, -110} {
		top := math.Float32bits(lim)
		sign := math.Float32bits(lim) & 0x80000000
		step := uint32(97)
		if raceEnabled {
			step = 9973
		}
		for b := uint32(0); b <= top&^sign; b += step {
			xs = append(xs, math.Float32frombits(b|sign))
		}
	}
	r := rand.New(rand.NewPCG(42, 43))
	n := 1 << 20
	if raceEnabled {
		n = 1 << 12
	}
	for range n {
		xs = append(xs, r.Float32()*40-30)
	}
	edges := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.5, -0.5, 0.3465736, -0.3465736, 0.3465737, -0.3465737,
		88.72283, 88.72284, 88.7228, 88.7, 88.8, 89, 89.0001, 100, 1e10, math.MaxFloat32,
		-87.33654, -87.3365, -87.34, -100, -103.27893, -103.2789, -103.9720, -103.9721, -103.973, -104, -104.1, -150, -1e10, -math.MaxFloat32,
		1e-8, -1e-8, 1e-30, -1e-30, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
		float32(math.Inf(1)), float32(math.Inf(-1))}
	for i := -300; i <= 300; i++ { // around the multiples of ln2/2, where n changes
		c := float32(float64(i) * math.Ln2 / 2)
		edges = append(edges, math.Nextafter32(c, -200), c, math.Nextafter32(c, 200))
	}
	return append(xs, edges...)
}

// TestExpAccuracy measures exp32 and every implementation's vector exp
// (ExpSubSum with m = 0) against the correctly rounded exp.
func TestExpAccuracy(t *testing.T) {
	xs := expTestPoints()
	want := make([]float32, len(xs))
	for i, x := range xs {
		want[i] = expRef(x)
	}
	check := func(t *testing.T, name string, got []float32) {
		t.Helper()
		var worst int64
		var worstX float32
		for i, x := range xs {
			if want[i] != want[i] {
				require.True(t, got[i] != got[i], "%s: exp(NaN) = %v", name, got[i])
				continue
			}
			d := ulpDiff(got[i], want[i])
			if d < 0 {
				d = -d
			}
			if d > worst {
				worst, worstX = d, x
			}
		}
		t.Logf("%s: max error %d ulp (at x = %v: got %v, want %v) over %d points", name, worst, worstX,
			got[indexOf(xs, worstX)], expRef(worstX), len(xs))
		require.LessOrEqual(t, worst, int64(2), "%s", name)
	}
	got := make([]float32, len(xs))
	for i, x := range xs {
		got[i] = exp32(x)
	}
	check(t, "exp32", got)

	nan := []float32{float32(math.NaN()), 1}
	require.True(t, exp32(nan[0]) != exp32(nan[0]))
	forEachImpl(t, func(t *testing.T, k kernelImpl) {
		got := append([]float32(nil), xs...)
		const chunk = 4099
		for i := 0; i < len(got); i += chunk {
			k.ExpSubSum(got[i:min(i+chunk, len(got))], 0)
		}
		check(t, k.name, got)
		v := append([]float32(nil), nan...)
		k.ExpSubSum(v, 0)
		require.True(t, v[0] != v[0], "exp(NaN) = %v", v[0])
		require.Equal(t, float32(math.E), v[1])
	})
}

func indexOf(xs []float32, x float32) int {
	for i, v := range xs {
		if math.Float32bits(v) == math.Float32bits(x) {
			return i
		}
	}
	return 0
}

// wideSlice is randSlice scaled to [-s, s).
func wideSlice(r *rand.Rand, n, off int, s float32) []float32 {
	x := randSlice(r, n, off)
	for i := range x {
		x[i] *= s
	}
	return x
}

// relClose checks |want-got| <= ulps float32 ulps of want (plus a floor for
// results near 0 whose inputs were larger).
func relClose(t *testing.T, want, got float32, ulps, floor float64, msgAndArgs ...any) {
	t.Helper()
	requireClose(t, want, got, ulps*math.Abs(float64(want))/(1<<23)+floor, msgAndArgs...)
}

func TestSiluMul(t *testing.T) {
	var outs [][]float32 // per implementation, for the cross-check below
	forEachImpl(t, func(t *testing.T, k kernelImpl) {
		r := rand.New(rand.NewPCG(21, 22))
		var all []float32
		for _, n := range testLengths {
			for _, off := range []int{0, 1, 7, 15} {
				hb, check := guarded(t, n, off)
				h0 := wideSlice(r, n, 0, 12)
				if n > 4 {
					h0[0], h0[1], h0[2], h0[3] = -200, 200, 0, 88.8
				}
				copy(hb, h0)
				hb2 := wideSlice(r, n+off%3, 16-off, 3)
				want := append([]float32(nil), h0...)
				siluMulGeneric(want, hb2)
				k.SiluMul(hb, hb2)
				check()
				for i := range want {
					// exp within 2 ulp moves 1/(1+e) by at most 2 ulp; plus the roundings.
					relClose(t, want[i], hb[i], 4, 1e-30, "n=", n, " i=", i, " x=", h0[i])
				}
				all = append(all, hb...)
			}
		}
		outs = append(outs, all)
	})
	// The assembly variants do exactly the same operations: bit-identical.
	if hasAVX512 && !dispatchOnly {
		require.Equal(t, outs[0], outs[1], "avx512 and avx2 differ")
	}
}

func TestExpSubSum(t *testing.T) {
	forEachImpl(t, func(t *testing.T, k kernelImpl) {
		r := rand.New(rand.NewPCG(23, 24))
		for _, n := range append(testLengths, 32000) {
			for _, off := range []int{0, 3, 15} {
				x, check := guarded(t, n, off)
				x0 := wideSlice(r, n, 0, 20)
				copy(x, x0)
				m := maxfGeneric(x0)
				if n%5 == 1 {
					m = 3 // some values above m: exp > 1
				}
				want := append([]float32(nil), x0...)
				wantSum := expSubSumGeneric(want, m)
				sum := k.ExpSubSum(x, m)
				check()
				var exact float64 // the sum of the kernel's own terms
				for i := range want {
					relClose(t, want[i], x[i], 2, 0, "n=", n, " i=", i)
					exact += float64(x[i])
				}
				// Any summation order is within (n-1)*2^-24*Σ|x| of the exact sum.
				requireClose(t, float32(exact), sum, float64(n)*exact/(1<<24)+1e-30, "sum n=", n)
				requireClose(t, wantSum, sum, 2*float64(n)*exact/(1<<24)+1e-30, "sum vs reference n=", n)
			}
		}
	})
}

func TestMaxf(t *testing.T) {
	forEachImpl(t, func(t *testing.T, k kernelImpl) {
		r := rand.New(rand.NewPCG(25, 26))
		require.Equal(t, float32(math.Inf(-1)), k.Maxf(nil))
		for _, n := range append(testLengths, 32000) {
			for _, off := range []int{0, 5, 13} {
				x := randSlice(r, n, off)
				for i := range x {
					x[i] -= 2 // all negative: a zero from a tail would show
				}
				for _, pos := range []int{0, n / 2, n - 1} {
					if n == 0 {
						break
					}
					y := append([]float32(nil), x...)
					y[pos] = 5
					require.Equal(t, float32(5), k.Maxf(y), "n=%d pos=%d", n, pos)
				}
				// The reference is not maxfGeneric, which maxfGo is: the
				// largest value of a sorted copy.
				if n > 0 {
					sorted := slices.Clone(x)
					slices.Sort(sorted)
					require.Equal(t, sorted[n-1], k.Maxf(x), "n=%d", n)
				}
			}
		}
	})
}

func TestDivScalar(t *testing.T) {
	forEachImpl(t, func(t *testing.T, k kernelImpl) {
		r := rand.New(rand.NewPCG(27, 28))
		for _, n := range testLengths {
			for _, off := range []int{0, 2, 9} {
				x, check := guarded(t, n, off)
				x0 := randSlice(r, n, 0)
				copy(x, x0)
				d := r.Float32()*7 + 0.1
				// The reference is not divScalarGeneric, which divScalarGo
				// is: the quotient in float64, rounded to float32. Rounding
				// twice gives the correctly rounded float32 quotient, as
				// float64 has more than 2*24+2 bits (IEEE 754 division).
				want := make([]float32, n)
				for i, v := range x0 {
					want[i] = float32(float64(v) / float64(d))
				}
				k.DivScalar(x, d)
				check()
				for i := range want {
					require.Equal(t, math.Float32bits(want[i]), math.Float32bits(x[i]), "n=%d i=%d", n, i)
				}
			}
		}
	})
}

// stridedRows returns rows rows of width random floats, stride apart,
// starting at offset off of a buffer that ends exactly after the last row:
// the gaps between rows and the cells after the slice's end (within its
// capacity) hold NaN, so any read outside the rows poisons the result.
func stridedRows(r *rand.Rand, rows, width, stride, off int) []float32 {
	n := 0
	if rows > 0 {
		n = (rows-1)*stride + width
	}
	buf := make([]float32, off+n+32)
	for i := range buf {
		buf[i] = sentinel
	}
	for t := range rows {
		for i := range width {
			buf[off+t*stride+i] = r.Float32()*2 - 1
		}
	}
	return buf[off : off+n]
}

var stridedPositions = []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 31, 33, 64, 129, 300}

func stridedCases(f func(hs, stride, rows int)) {
	for hs := 1; hs <= 130; hs++ {
		if raceEnabled && hs%16 > 1 && hs%16 != 15 && hs != 48 {
			continue
		}
		extra := []int{0, 1, 5, 17}
		if hs%16 == 0 || hs%16 == 1 || hs%16 == 15 || hs == 48 || hs == 3 {
			extra = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}
		}
		for _, e := range extra {
			for _, rows := range stridedPositions {
				f(hs, hs+e, rows)
			}
		}
	}
	f(48, 288, 1024)
	f(64, 768, 257)
	f(200, 300, 21)
	f(64, 64, 300) // contiguous rows
}

func TestDotStrided(t *testing.T) {
	forEachImpl(t, func(t *testing.T, k kernelImpl) {
		r := rand.New(rand.NewPCG(29, 30))
		stridedCases(func(hs, stride, rows int) {
			off := (hs + stride + rows) % 16
			q := randSlice(r, hs, 15-off)
			kc := stridedRows(r, rows, hs, stride, off)
			out, check := guarded(t, rows, off)
			want := make([]float32, rows)
			dotStridedGeneric(want, q, kc, stride)
			k.DotStrided(out, q, kc, stride)
			check()
			for i := range want {
				requireClose(t, want[i], out[i], dotTol(q, kc[i*stride:]), "hs=", hs, " stride=", stride, " rows=", rows, " t=", i)
			}
		})
	})
}

func TestAxpyStrided(t *testing.T) {
	var outs [][]float32
	forEachImpl(t, func(t *testing.T, k kernelImpl) {
		r := rand.New(rand.NewPCG(31, 32))
		var all []float32
		stridedCases(func(hs, stride, rows int) {
			off := (hs + stride + rows) % 16
			a := randSlice(r, rows, off%5)
			v := stridedRows(r, rows, hs, stride, off)
			out, check := guarded(t, hs, 15-off)
			out0 := randSlice(r, hs, 0)
			copy(out, out0)
			want := append([]float32(nil), out0...)
			axpyStridedGeneric(want, a, v, stride)
			k.AxpyStrided(out, a, v, stride)
			check()
			for i := range want {
				sum := math.Abs(float64(out0[i]))
				for t := range a {
					sum += math.Abs(float64(a[t] * v[t*stride+i]))
				}
				requireClose(t, want[i], out[i], 1e-6*sum+1e-7, "hs=", hs, " stride=", stride, " rows=", rows, " i=", i)
			}
			all = append(all, out...)
		})
		outs = append(outs, all)
	})
	if hasAVX512 && !dispatchOnly {
		// Both do one FMA per term in order of t, as Axpy does: bit-identical.
		require.Equal(t, outs[0], outs[1], "avx512 and avx2 differ")
	}
}

// TestAxpyStridedIsAxpyLoop checks AxpyStrided computes exactly what a loop
// of Axpy calls over the rows computes (the attention code it replaces).
func TestAxpyStridedIsAxpyLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, hs := range []int{1, 7, 16, 33, 48, 64, 100, 128, 129, 200} {
		stride := hs + 9
		rows := 77
		a := randSlice(r, rows, 0)
		v := stridedRows(r, rows, hs, stride, 1)
		want, got := make([]float32, hs), make([]float32, hs)
		for t := range a {
			Axpy(a[t], v[t*stride:t*stride+hs], want)
		}
		AxpyStrided(got, a, v, stride)
		require.Equal(t, want, got, "hs=%d", hs)
	}
}

func TestStridedPanicOnShortSlices(t *testing.T) {
	s := make([]float32, 100)
	require.Panics(t, func() { DotStrided(s[:3], s[:8], s[:2*10+7], 10) })
	require.Panics(t, func() { DotStrided(s[:3], s[:8], s, 7) })
	require.Panics(t, func() { AxpyStrided(s[:8], s[:3], s[:2*10+7], 10) })
	require.Panics(t, func() { AxpyStrided(s[:8], s[:3], s, 7) })
	require.Panics(t, func() { SiluMul(s[:8], s[:7]) })
	require.NotPanics(t, func() { DotStrided(s[:3], s[:8], s[:2*10+8], 10) })
	require.NotPanics(t, func() { AxpyStrided(s[:8], s[:3], s[:2*10+8], 10) })
	require.NotPanics(t, func() { DotStrided(nil, s[:8], nil, 10) })
	require.NotPanics(t, func() { AxpyStrided(s[:8], nil, nil, 10) })
}

// Benchmarks: SwiGLU on the hidden sizes of stories15M/110M, softmax's exp
// step on an attention row and on the vocabulary, and the strided attention
// kernels on stories15M (head 48, kv_dim 288) and stories110M (head 64,
// kv_dim 768) shapes. "loop" is the code they replace: a dot or Axpy call
// per position.

func BenchmarkSiluMul(b *testing.B) {
	for _, n := range []int{768, 2048} {
		r := rand.New(rand.NewPCG(1, uint64(n)))
		hb0, hb2 := wideSlice(r, n, 0, 4), wideSlice(r, n, 0, 4)
		hb := make([]float32, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.Run("ref", func(b *testing.B) {
				for b.Loop() {
					copy(hb, hb0)
					siluMulGeneric(hb, hb2)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/elem")
			})
			benchImpls(b, func(b *testing.B, k kernelImpl) {
				for b.Loop() {
					copy(hb, hb0)
					k.SiluMul(hb, hb2)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/elem")
			})
		})
	}
}

func BenchmarkExpSubSum(b *testing.B) {
	for _, n := range []int{256, 32000} {
		r := rand.New(rand.NewPCG(2, uint64(n)))
		x0 := wideSlice(r, n, 0, 10)
		x := make([]float32, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.Run("ref", func(b *testing.B) {
				for b.Loop() {
					copy(x, x0)
					sinkF32 += expSubSumGeneric(x, 10)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/elem")
			})
			benchImpls(b, func(b *testing.B, k kernelImpl) {
				for b.Loop() {
					copy(x, x0)
					sinkF32 += k.ExpSubSum(x, 10)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/elem")
			})
		})
	}
}

var stridedShapes = []struct{ hs, stride int }{{48, 288}, {64, 768}, {48, 768}, {64, 288}}

func BenchmarkDotStrided(b *testing.B) {
	for _, sh := range stridedShapes {
		for _, pos := range []int{128, 1024} {
			r := rand.New(rand.NewPCG(3, uint64(pos)))
			q := randSlice(r, sh.hs, 0)
			k := stridedRows(r, pos, sh.hs, sh.stride, 0)
			out := make([]float32, pos)
			b.Run(fmt.Sprintf("hs=%d/stride=%d/pos=%d", sh.hs, sh.stride, pos), func(b *testing.B) {
				b.Run("loop", func(b *testing.B) {
					for b.Loop() {
						for t := range out {
							out[t] = Dot(q, k[t*sh.stride:t*sh.stride+sh.hs])
						}
					}
					reportFlops(b, float64(2*pos*sh.hs))
				})
				benchImpls(b, func(b *testing.B, kk kernelImpl) {
					for b.Loop() {
						kk.DotStrided(out, q, k, sh.stride)
					}
					reportFlops(b, float64(2*pos*sh.hs))
				})
			})
		}
	}
}

func BenchmarkAxpyStrided(b *testing.B) {
	for _, sh := range stridedShapes {
		for _, pos := range []int{128, 1024} {
			r := rand.New(rand.NewPCG(4, uint64(pos)))
			a := randSlice(r, pos, 0)
			v := stridedRows(r, pos, sh.hs, sh.stride, 0)
			out := make([]float32, sh.hs)
			b.Run(fmt.Sprintf("hs=%d/stride=%d/pos=%d", sh.hs, sh.stride, pos), func(b *testing.B) {
				b.Run("loop", func(b *testing.B) {
					for b.Loop() {
						clear(out)
						for t, at := range a {
							Axpy(at, v[t*sh.stride:t*sh.stride+sh.hs], out)
						}
					}
					reportFlops(b, float64(2*pos*sh.hs))
				})
				benchImpls(b, func(b *testing.B, k kernelImpl) {
					for b.Loop() {
						clear(out)
						k.AxpyStrided(out, a, v, sh.stride)
					}
					reportFlops(b, float64(2*pos*sh.hs))
				})
			})
		}
	}
}
