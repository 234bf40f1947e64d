package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/gguf"
)

// The reference: llama.cpp's dequantize_row_q*_K transcribed in float64
// (every value exact: f16 scales times small integers), then a float64 dot
// product with the dequantized activation. It also returns, per value, the
// magnitude of the terms an implementation may round: |d*sc|*q + |dmin*m|
// for Q4_K and Q5_K, |d*sc|*(q+32) for Q6_K (which may subtract the 32 in
// float).

func refDequantK(typ string, b []byte) (y, mag [qkK]float64) {
	f16 := func(o int) float64 { return float64(F16ToF32(uint16(b[o]) | uint16(b[o+1])<<8)) }
	switch typ {
	case "Q4_K", "Q5_K":
		d, dmin := f16(0), f16(2)
		s := b[4:16]
		qs, qh := b[16:144], []byte(nil)
		if typ == "Q5_K" {
			qh, qs = b[16:48], b[48:176]
		}
		for j := range 8 {
			var sc, m int
			if j < 4 {
				sc, m = int(s[j]&63), int(s[j+4]&63)
			} else {
				sc = int(s[j+4]&0xF) | int(s[j-4]>>6)<<4
				m = int(s[j+4]>>4) | int(s[j]>>6)<<4
			}
			for l := range 32 {
				q := int(qs[32*(j/2)+l])
				if j%2 == 0 {
					q &= 0xF
				} else {
					q >>= 4
				}
				if qh != nil && qh[l]&(1<<j) != 0 {
					q += 16
				}
				y[32*j+l] = d*float64(sc)*float64(q) - dmin*float64(m)
				mag[32*j+l] = math.Abs(d*float64(sc))*float64(q) + math.Abs(dmin*float64(m))
			}
		}
	case "Q6_K":
		d := f16(208)
		for h := range 2 {
			ql, qh := b[64*h:], b[128+32*h:]
			sc := b[192+8*h:]
			for l := range 32 {
				is := l / 16
				q := [4]int{
					int(ql[l]&0xF) | int(qh[l]>>0&3)<<4,
					int(ql[l+32]&0xF) | int(qh[l]>>2&3)<<4,
					int(ql[l]>>4) | int(qh[l]>>4&3)<<4,
					int(ql[l+32]>>4) | int(qh[l]>>6&3)<<4,
				}
				for i, qi := range q {
					ds := d * float64(int8(sc[is+2*i]))
					y[128*h+l+32*i] = ds * float64(qi-32)
					mag[128*h+l+32*i] = math.Abs(ds) * float64(qi+32)
				}
			}
		}
	default:
		panic(typ)
	}
	return y, mag
}

// refMatVecK returns, for rows rows of w, the reference product with the
// activation and the sum of |terms| that bounds the rounding.
func refMatVecK(typ kqType, w []byte, rows int, xq []int8, xs []float32) (want, abs []float64) {
	n := len(xq)
	rb := n / qkK * typ.blockBytes
	want, abs = make([]float64, rows), make([]float64, rows)
	for r := range rows {
		for i := range n / qkK {
			y, mag := refDequantK(typ.name, w[r*rb+i*typ.blockBytes:])
			for k := range qkK {
				x := float64(xs[(i*qkK+k)/QBlock]) * float64(xq[i*qkK+k])
				want[r] += y[k] * x
				abs[r] += mag[k] * math.Abs(x)
			}
		}
	}
	return want, abs
}

// kqTolerance is k*eps32 for rows of n values: each float term is rounded at
// most 6 times (d*sc, the int32 sum's conversion, the activation scale, the
// min's two products, the subtraction) and an implementation adds at most
// n/4 terms a row (the VNNI kernels: 32 lanes of sub-block sums and 8 mins
// per 256 values), each addition rounding by eps32 of the partial sum.
func kqTolerance(n int) float64 { return float64(6+n/4) * 0x1p-24 }

// randKBlocks returns nb random super-blocks: random bytes with the f16
// scales set to finite values of both signs (d up to 0.01, dmin up to
// 0.005: the magnitudes llama-quantize writes for weights of about 1).
func randKBlocks(r *rand.Rand, typ kqType, nb int) []byte {
	w := make([]byte, nb*typ.blockBytes)
	for i := range w {
		w[i] = byte(r.Uint32())
	}
	put := func(o int, v float32) {
		h := F32ToF16(v)
		w[o], w[o+1] = byte(h), byte(h>>8)
	}
	for i := range nb {
		o := i * typ.blockBytes
		if typ.name == "Q6_K" {
			put(o+208, (r.Float32()-0.2)*0.01)
		} else {
			put(o, (r.Float32()-0.2)*0.01)
			put(o+2, (r.Float32()-0.2)*0.005)
		}
	}
	return w
}

// kqRandActivation returns batch random quantized vectors of n values (a
// multiple of qkK), with one scale per super-block as the K-quant kernels
// want (qblock.go).
func kqRandActivation(r *rand.Rand, n, batch int) ([]int8, []float32, []int32) {
	xq := make([]int8, n*batch)
	for i := range xq {
		xq[i] = int8(r.IntN(255) - 127)
	}
	xs := make([]float32, len(xq)/QBlock)
	for i := range xs {
		xs[i] = r.Float32() * 0.05
		if i%(qkK/QBlock) != 0 {
			xs[i] = xs[i-1]
		}
	}
	xsum := make([]int32, len(xs))
	blockSums(xsum, xq)
	return xq, xs, xsum
}

const (
	kqGuard    = 5
	kqSentinel = float32(-12345.5)
)

// kqGuarded returns a slice of n floats inside a buffer whose kqGuard cells on
// each side hold kqSentinel, and a check that they still do.
func kqGuarded(t *testing.T, n int) ([]float32, func(msg string)) {
	buf := make([]float32, n+2*kqGuard)
	for i := range buf {
		buf[i] = kqSentinel
	}
	return buf[kqGuard : kqGuard+n], func(msg string) {
		t.Helper()
		for i := range kqGuard {
			require.Equal(t, kqSentinel, buf[i], "%s: guard before out", msg)
			require.Equal(t, kqSentinel, buf[kqGuard+n+i], "%s: guard after out", msg)
		}
	}
}

func kqCheckClose(t *testing.T, got float32, want, abs, tol float64, msg string) {
	t.Helper()
	if d := math.Abs(float64(got) - want); !(d <= tol*abs) {
		t.Fatalf("%s: got %v, want %v (diff %.3g > %.3g)", msg, got, want, d, tol*abs)
	}
}

func TestDequantKQuant(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range kqTypes() {
		for _, nb := range []int{1, 2, 3, 5} {
			src := randKBlocks(r, typ, nb)
			for _, n := range []int{nb * qkK, nb*qkK - 1, nb*qkK - 200} {
				dst, check := kqGuarded(t, n)
				typ.dequant(dst, src)
				check(typ.name)
				for i, v := range dst {
					y, mag := refDequantK(typ.name, src[i/qkK*typ.blockBytes:])
					// One rounding (the subtraction, or the product with q).
					kqCheckClose(t, v, y[i%qkK], mag[i%qkK], 0x1p-24, fmt.Sprintf("%s n=%d value %d", typ.name, n, i))
				}
			}
		}
	}
}

// kqTestImpls is typ's implementations plus the dispatching functions
// (Block's; only those when dispatchOnly).
func kqTestImpls(typ kqType) []kqImpl {
	bt := map[string]gguf.Type{"Q4_K": gguf.TypeQ4_K, "Q5_K": gguf.TypeQ5_K, "Q6_K": gguf.TypeQ6_K}[typ.name]
	dispatch := kqImpl{"dispatch", Block(bt).MatVec, Block(bt).MatMat}
	if dispatchOnly {
		return []kqImpl{dispatch}
	}
	return append(typ.impls[:len(typ.impls):len(typ.impls)], dispatch)
}

func TestMatVecKQuant(t *testing.T) {
	for _, typ := range kqTypes() {
		for _, impl := range kqTestImpls(typ) {
			t.Logf("%s: %s", typ.name, impl.name)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	rowCounts := []int{1, 2, 3, 4, 5, 7, 8, 9, 13, 17}
	for _, typ := range kqTypes() {
		for _, nb := range []int{1, 2, 3, 5, 7, 9} {
			n := nb * qkK
			const maxRows = 17
			const maxOff = 37
			blocks := randKBlocks(r, typ, maxRows*nb)
			xq, xs, xsum := kqRandActivation(r, n, 1)
			for _, off := range []int{0, 1, 3, maxOff} {
				// The weights at an unaligned offset of a larger buffer.
				buf := make([]byte, off+len(blocks)+maxOff)
				w := buf[off : off+copy(buf[off:], blocks)]
				want, abs := refMatVecK(typ, w, maxRows, xq, xs)
				for _, rows := range rowCounts {
					if raceEnabled && rows%2 == 0 {
						continue
					}
					for _, impl := range kqTestImpls(typ) {
						msg := fmt.Sprintf("%s/%s n=%d rows=%d off=%d", typ.name, impl.name, n, rows, off)
						out, check := kqGuarded(t, rows)
						impl.MatVec(out, w, xq, xs, xsum)
						check(msg)
						for i := range out {
							kqCheckClose(t, out[i], want[i], abs[i], kqTolerance(n), fmt.Sprintf("%s row %d", msg, i))
						}
					}
				}
			}
		}
	}
}

func TestMatMatKQuant(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, typ := range kqTypes() {
		for _, nb := range []int{1, 3, 8} {
			n := nb * qkK
			const maxRows = 19
			blocks := randKBlocks(r, typ, maxRows*nb)
			w := make([]byte, 7+len(blocks))[7:]
			copy(w, blocks)
			for batch := 1; batch <= 9; batch++ {
				xq, xs, xsum := kqRandActivation(r, n, batch)
				want, abs := make([][]float64, batch), make([][]float64, batch)
				for b := range batch {
					want[b], abs[b] = refMatVecK(typ, w, maxRows, xq[b*n:(b+1)*n], xs[b*n/QBlock:])
				}
				for _, rows := range []int{1, 3, 4, 5, 8, 13, 19} {
					for _, impl := range kqTestImpls(typ) {
						msg := fmt.Sprintf("%s/%s n=%d rows=%d batch=%d", typ.name, impl.name, n, rows, batch)
						out, check := kqGuarded(t, rows*batch)
						impl.MatMat(out, w, rows, xq, xs, xsum, batch)
						check(msg)
						for b := range batch {
							for i := range rows {
								kqCheckClose(t, out[b*rows+i], want[b][i], abs[b][i], kqTolerance(n), fmt.Sprintf("%s vector %d row %d", msg, b, i))
							}
						}
					}
				}
			}
		}
	}
}

// TestMatVecKQuantExtremes sets every quant to its largest value (or, for
// Q6_K, 0: q-32 = -32) against activations of ±127 and -128, the largest
// partial sums the kernels build (int16 saturation would show here), and
// the largest scales.
func TestMatVecKQuantExtremes(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, typ := range kqTypes() {
		const nb, rows = 3, 5
		n := nb * qkK
		for _, fill := range []byte{0xff, 0x00} {
			w := randKBlocks(r, typ, rows*nb)
			for i := range rows * nb {
				b := w[i*typ.blockBytes:]
				switch typ.name {
				case "Q6_K":
					for k := range 192 {
						b[k] = fill
					}
					for k := 192; k < 208; k++ {
						b[k] = byte(int8(-128) + int8(k%2*255))
					}
				default:
					for k := 4; k < typ.blockBytes; k++ {
						b[k] = fill
					}
				}
			}
			for _, xv := range []int8{127, -127, -128} {
				xq, xs, xsum := kqRandActivation(r, n, 1)
				for i := range xq {
					if i%3 != 2 {
						xq[i] = xv
					}
				}
				blockSums(xsum, xq)
				want, abs := refMatVecK(typ, w, rows, xq, xs)
				for _, impl := range typ.impls {
					out := make([]float32, rows)
					impl.MatVec(out, w, xq, xs, xsum)
					for i := range out {
						kqCheckClose(t, out[i], want[i], abs[i], kqTolerance(n), fmt.Sprintf("%s/%s fill=%#x x=%d row %d", typ.name, impl.name, fill, xv, i))
					}
				}
			}
		}
	}
}

func BenchmarkMatVecKQuant(b *testing.B) {
	shapes := []struct{ rows, cols int }{{5632, 2048}, {2048, 5632}, {512, 2048}}
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range kqTypes() {
		for _, s := range shapes {
			w := randKBlocks(r, typ, s.rows*s.cols/qkK)
			xq, xs, xsum := kqRandActivation(r, s.cols, 1)
			out := make([]float32, s.rows)
			for _, impl := range typ.impls {
				b.Run(fmt.Sprintf("%s/%dx%d/%s", typ.name, s.rows, s.cols, impl.name), func(b *testing.B) {
					b.SetBytes(int64(len(w)))
					for b.Loop() {
						impl.MatVec(out, w, xq, xs, xsum)
					}
				})
			}
		}
	}
}

func BenchmarkMatMatKQuant(b *testing.B) {
	const rows, cols, batch = 2048, 2048, 64
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range kqTypes() {
		w := randKBlocks(r, typ, rows*cols/qkK)
		xq, xs, xsum := kqRandActivation(r, cols, batch)
		out := make([]float32, rows*batch)
		for _, impl := range typ.impls {
			b.Run(fmt.Sprintf("%s/%s", typ.name, impl.name), func(b *testing.B) {
				b.SetBytes(int64(len(w)))
				for b.Loop() {
					impl.MatMat(out, w, rows, xq, xs, xsum, batch)
				}
			})
		}
	}
}

// BenchmarkMatVecKQuantDRAM streams about 240 MB of weights (more than the
// L3 of the machines we run on), as a model's generation does: the MatVec
// kernels should run at memory bandwidth there. The weights are in
// anonymous memory with huge pages where the OS has them, as a model read
// with -mmap=false: on the Zen 5 VM the heap's small pages made the
// figures swing by 2x between runs. Only with LLAMA2_BENCH_DRAM=1.
func BenchmarkMatVecKQuantDRAM(b *testing.B) {
	if os.Getenv("LLAMA2_BENCH_DRAM") == "" {
		b.Skip("set LLAMA2_BENCH_DRAM=1 to run")
	}
	const cols = 2048
	r := rand.New(rand.NewPCG(3, 4))
	xq, xs, xsum := kqRandActivation(r, cols, 1)
	for _, typ := range kqTypes() {
		rows := 240 << 20 / (cols / qkK * typ.blockBytes)
		pattern := randKBlocks(r, typ, 1024)
		w := make([]byte, rows*cols/qkK*typ.blockBytes)
		for i := 0; i < len(w); i += len(pattern) {
			copy(w[i:], pattern)
		}
		out := make([]float32, rows)
		for _, impl := range typ.impls {
			if impl.name == "go" {
				continue
			}
			b.Run(typ.name+"/"+impl.name, func(b *testing.B) {
				b.SetBytes(int64(len(w)))
				for b.Loop() {
					impl.MatVec(out, w, xq, xs, xsum)
				}
			})
		}
	}
}
