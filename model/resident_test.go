package model

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/llama2-go/llama2/gguf"
	"github.com/stretchr/testify/require"
)

// residentCase returns rows of nb random Q8_0 blocks, and the same rows as
// a resident tensor.
func residentCase(t testing.TB, r *rand.Rand, rows, nb int) (raw []byte, res tensor) {
	raw = randBlocks(r, blockCases[0], rows*nb, 0)
	res = tensor{rows: rows, cols: nb * qBlock, b: slices.Clone(raw),
		blk: blockTypes[gguf.TypeQ8_0], rowBytes: nb * q8_0Bytes}
	require.True(t, res.makeResident())
	return raw, res
}

// residentImpls are the kernels of resident panels: the dispatching ones
// (assembly where the CPU has it) and Go's.
var residentImpls = []struct {
	name   string
	matVec func([]float32, []byte, []int8, []float32, []int32)
	matMat func([]float32, []byte, int, []int8, []float32, []int32, int)
}{
	{"dispatch", matVecResidentQ8_0, matMatResidentQ8_0},
	{"go", matVecResidentGo, matMatResidentGo},
}

// TestResidentKernels checks the kernels of resident panels against the
// reference loop over the file's blocks, for one vector and for batches.
func TestResidentKernels(t *testing.T) {
	for _, k := range residentImpls {
		t.Run(k.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(41, 42))
			for _, nb := range blockCounts {
				n := nb * qBlock
				// 1-3 panels one at a time; 4 and more 4 streams apart, then the rest.
				for _, rows := range []int{16, 32, 48, 64, 80, 112, 176} {
					raw, res := residentCase(t, r, rows, nb)
					xq, xs, xsum := randActivation(r, n, 1)
					want, tol := blockWant(blockCases[0], rows, raw, xq, xs, xsum)
					out, check := guarded(t, rows, nb%3)
					k.matVec(out, res.b, xq, xs, xsum)
					checkOut(t, out, want, tol, check, fmt.Sprintf("blocks=%d rows=%d", nb, rows))

					for _, batch := range []int{1, 2, 3, 7, 8, 13} {
						xq, xs, xsum := randActivation(r, n, batch)
						out, check := guarded(t, batch*rows, batch%4)
						k.matMat(out, res.b, rows, xq, xs, xsum, batch)
						check()
						for v := range batch {
							q, s := xq[v*n:(v+1)*n], xs[v*nb:(v+1)*nb]
							sum := xsum[v*nb : (v+1)*nb]
							want, tol := blockWant(blockCases[0], rows, raw, q, s, sum)
							msg := fmt.Sprintf("blocks=%d rows=%d batch=%d v=%d", nb, rows, batch, v)
							checkOut(t, out[v*rows:(v+1)*rows], want, tol, func() {}, msg)
							// A vector gets the same values in a batch as alone.
							one := make([]float32, rows)
							k.matVec(one, res.b, q, s, sum)
							require.Equal(t, one, out[v*rows:(v+1)*rows], msg)
						}
					}
				}
			}
		})
	}
}

// TestResidentRows checks the parts of a resident tensor that callers
// use: rows cut anywhere (mulRows), row views on panels, and dequantized
// rows equal to the file's.
func TestResidentRows(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	const rows, nb = 64, 5
	raw, res := residentCase(t, r, rows, nb)
	file := tensor{rows: rows, cols: nb * qBlock, b: raw, blk: blockTypes[gguf.TypeQ8_0], rowBytes: nb * q8_0Bytes}
	x := newActivation(randSlice(r, nb*qBlock, 0), actForm{gs: qBlock, sums: true})
	x.quantize()
	all := make([]float32, rows)
	res.mulRows(all, 0, &x)
	want := make([]float32, rows)
	file.mulRows(want, 0, &x)
	for i := range want {
		require.InDelta(t, want[i], all[i], 1e-3*(1+abs64(want[i])), "row %d", i)
	}
	for _, c := range [][2]int{{0, 16}, {3, 5}, {5, 40}, {16, 48}, {17, 64}, {63, 64}, {31, 33}} {
		out := make([]float32, c[1]-c[0])
		res.mulRows(out, c[0], &x)
		require.Equal(t, all[c[0]:c[1]], out, "rows %v", c)
	}
	v, ok := res.rowsView(16, 48)
	require.True(t, ok)
	out := make([]float32, 32)
	v.mulRows(out, 0, &x)
	require.Equal(t, all[16:48], out)
	_, ok = res.rowsView(8, 48)
	require.False(t, ok, "a view must start on a panel")
	got, wantRow := make([]float32, nb*qBlock), make([]float32, nb*qBlock)
	for row := range rows {
		res.rowTo(got, row)
		file.rowTo(wantRow, row)
		require.Equal(t, wantRow, got, "row %d", row)
	}
}

// TestResidentOnlyWholePanels: tensors that are not Q8_0 or whose rows are
// not whole panels keep the file's layout.
func TestResidentOnlyWholePanels(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	w := randBlocks(r, blockCases[0], 24*2, 0)
	odd := tensor{rows: 24, cols: 64, b: w, blk: blockTypes[gguf.TypeQ8_0], rowBytes: 2 * q8_0Bytes}
	require.False(t, odd.makeResident())
	require.Equal(t, blockTypes[gguf.TypeQ8_0], odd.blk)
	q4 := tensor{rows: 16, cols: 64, b: w[:16*2*q4_0Bytes], blk: blockTypes[gguf.TypeQ4_0], rowBytes: 2 * q4_0Bytes}
	require.False(t, q4.makeResident())
}

func abs64(v float32) float64 {
	if v < 0 {
		return float64(-v)
	}
	return float64(v)
}

// BenchmarkMatVecResidentDRAM streams about 560 MB of Q8_0 matrices from
// anonymous memory, in the file's layout and as resident panels, on 1 and
// 2 threads (LLAMA2_BENCH_DRAM=1): TinyLlama's 5632x2048 and stories110M's
// 768x768, whose 627 KB leave each call's streams little time to warm up.
func BenchmarkMatVecResidentDRAM(b *testing.B) {
	if os.Getenv("LLAMA2_BENCH_DRAM") == "" {
		b.Skip("set LLAMA2_BENCH_DRAM=1 to run")
	}
	for _, shape := range []struct{ rows, cols, mats int }{{5632, 2048, 50}, {768, 768, 900}} {
		benchResidentDRAM(b, shape.rows, shape.cols, shape.mats)
	}
}

func benchResidentDRAM(b *testing.B, mrows, cols, mats int) {
	rows := mrows * mats
	r := rand.New(rand.NewPCG(3, 4))
	xq, xs, xsum := randActivation(r, cols, 1)
	rb := cols / qBlock * q8_0Bytes
	w, free, _, err := allocAnon(rows * rb)
	require.NoError(b, err)
	b.Cleanup(func() { free() })
	pattern := randBlocks(r, blockCases[0], 64*cols/qBlock, 0)
	for i := 0; i < len(w); i += len(pattern) {
		copy(w[i:], pattern)
	}
	x := activation{q: xq, s: xs, sum: xsum}
	out := make([]float32, rows)
	for _, layout := range []string{"file", "resident"} {
		t := tensor{rows: rows, cols: cols, b: w, blk: blockTypes[gguf.TypeQ8_0], rowBytes: rb}
		if layout == "resident" {
			require.True(b, t.makeResident())
		}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%d/%s/%dT", mrows, cols, layout, threads), func(b *testing.B) {
				p := newPool(threads)
				defer p.close()
				// One matrix at a time, split between the threads, as
				// generation does.
				body := func(m int) func(lo, hi int) {
					return func(lo, hi int) {
						t.mulRows(out[m*mrows+lo:m*mrows+hi], m*mrows+lo, &x)
					}
				}
				bodies := make([]func(lo, hi int), mats)
				for m := range bodies {
					bodies[m] = body(m)
				}
				b.SetBytes(int64(len(w)))
				for b.Loop() {
					for m := range mats {
						p.run(mrows, rowGrain, bodies[m])
					}
				}
			})
		}
	}
}

// BenchmarkMatVecResidentL2: 256 rows of 2048 (140 KB), from L2.
func BenchmarkMatVecResidentL2(b *testing.B) {
	const cols, rows = 2048, 256
	r := rand.New(rand.NewPCG(3, 4))
	xq, xs, xsum := randActivation(r, cols, 1)
	raw, res := residentCase(b, r, rows, cols/qBlock)
	x := activation{q: xq, s: xs, sum: xsum}
	out := make([]float32, rows)
	file := tensor{rows: rows, cols: cols, b: raw, blk: blockTypes[gguf.TypeQ8_0], rowBytes: cols / qBlock * q8_0Bytes}
	for _, c := range []struct {
		name string
		t    *tensor
	}{{"file", &file}, {"resident", &res}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				c.t.mulRows(out, 0, &x)
			}
		})
	}
}

// TestResidentModes opens the Q8_0 twin of randk.bin mapped and read: read,
// its matrices become resident panels (where this build has their
// kernels), the memory is read-only again, and both give llama.cpp's
// logits and each other's.
func TestResidentModes(t *testing.T) {
	path := fixture(t, "gguf/randk-Q8_0.gguf")
	tokens := readInts(t, fixture(t, "golden/gguf/teacher-tokens.txt"))
	var logits [2][]float32
	for i, mode := range loadModes {
		m, err := OpenWith(path, OpenOptions{Mmap: mode})
		require.NoError(t, err)
		want := readLogits(t, fixture(t, "golden/gguf/randk-Q8_0.logits.f32"), m.Config.VocabSize)
		resident := 0
		for l := range m.w.layers {
			lw := &m.w.layers[l]
			for _, w := range []*tensor{&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w1, &lw.w2, &lw.w3} {
				if w.blk.resident {
					resident++
				}
			}
		}
		if mode == MmapOff && residentKernels && canMmap {
			require.Equal(t, 7*len(m.w.layers), resident, "every matrix is whole panels")
			if runtime.GOOS == "linux" {
				require.Equal(t, "r--p", mappingPerms(t, addrOf(m.w.layers[0].wq.b)), "read-only again")
			}
		} else {
			require.Zero(t, resident, mode)
		}
		s := newSession(t, m, 2)
		for pos, tok := range tokens {
			l, err := s.Forward(tok, pos)
			require.NoError(t, err)
			require.Less(t, maxRangeError(l, want[pos]), 0.01, "%v pos %d", mode, pos)
			logits[i] = append(logits[i], l...)
		}
		require.NoError(t, m.Close())
	}
	require.Less(t, maxRangeError(logits[0], logits[1]), 1e-4)
}

// mappingPerms returns the permissions /proc/self/maps lists for addr.
func mappingPerms(t *testing.T, addr uintptr) string {
	maps, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	for line := range strings.Lines(string(maps)) {
		f := strings.Fields(line)
		a, b, _ := strings.Cut(f[0], "-")
		lo, err1 := strconv.ParseUint(a, 16, 64)
		hi, err2 := strconv.ParseUint(b, 16, 64)
		if err1 == nil && err2 == nil && uintptr(lo) <= addr && addr < uintptr(hi) {
			return f[1]
		}
	}
	t.Fatalf("%#x is not mapped", addr)
	return ""
}
