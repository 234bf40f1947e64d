package model

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/llama2-go/llama2/gguf"
	"github.com/llama2-go/llama2/internal/kernels"
	"github.com/stretchr/testify/require"
)

// randBlocks returns n random blocks of bt's type: random bytes with
// finite float16 scales (Q4_K, Q5_K: d and dmin; Q6_K: d, at its end).
func randBlocks(r *rand.Rand, bt *kernels.BlockType, n int) []byte {
	sz := bt.BlockBytes
	offs := map[gguf.Type][]int{gguf.TypeQ4_K: {0, 2}, gguf.TypeQ5_K: {0, 2}, gguf.TypeQ6_K: {208}}[bt.Type]
	if offs == nil {
		offs = []int{0}
	}
	b := make([]byte, n*sz)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	for i := range n {
		for _, o := range offs {
			binary.LittleEndian.PutUint16(b[i*sz+o:], kernels.F32ToF16(float32(r.Float64())/64))
		}
	}
	return b
}

// residentCase returns rows of nb random blocks of type typ, and the same
// rows as a resident tensor.
func residentCase(t testing.TB, r *rand.Rand, typ gguf.Type, rows, nb int) (raw []byte, res tensor) {
	bt := kernels.Block(typ)
	raw = randBlocks(r, bt, rows*nb)
	res = tensor{rows: rows, cols: nb * bt.BlockSize, b: slices.Clone(raw), blk: bt, rowBytes: nb * bt.BlockBytes}
	require.True(t, res.makeResident())
	require.Same(t, kernels.ResidentOf(bt), res.blk)
	return raw, res
}

// TestResidentRows checks the parts of a resident tensor that callers
// use: rows cut anywhere (mulRows), row views on panels, and dequantized
// rows equal to the file's.
func TestResidentRows(t *testing.T) {
	for _, typ := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K} {
		t.Run(typ.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(43, 44))
			const rows, nb = 64, 5
			raw, res := residentCase(t, r, typ, rows, nb)
			bt := kernels.Block(typ)
			cols := nb * bt.BlockSize
			file := tensor{rows: rows, cols: cols, b: raw, blk: bt, rowBytes: nb * bt.BlockBytes}
			x := newActivation(randomFloats(r, cols), actForm{gs: kernels.QBlock, sums: true, super: bt.SuperScale})
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
			got, wantRow := make([]float32, cols), make([]float32, cols)
			for row := range rows {
				res.rowTo(got, row)
				file.rowTo(wantRow, row)
				require.Equal(t, wantRow, got, "row %d", row)
			}
		})
	}
}

// TestResidentOnlyWholePanels: tensors whose type has no resident panels
// or whose rows are not whole panels keep the file's layout.
func TestResidentOnlyWholePanels(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	w := randBlocks(r, kernels.Block(gguf.TypeQ8_0), 24*2)
	odd := tensor{rows: 24, cols: 64, b: w, blk: kernels.Block(gguf.TypeQ8_0), rowBytes: 2 * 34}
	require.False(t, odd.makeResident())
	require.Equal(t, kernels.Block(gguf.TypeQ8_0), odd.blk)
	q5 := tensor{rows: 16, cols: 64, b: w[:16*2*22], blk: kernels.Block(gguf.TypeQ5_0), rowBytes: 2 * 22}
	require.False(t, q5.makeResident())
	require.Equal(t, kernels.Block(gguf.TypeQ5_0), q5.blk)
}

func abs64(v float32) float64 {
	if v < 0 {
		return float64(-v)
	}
	return float64(v)
}

// BenchmarkMatVecResidentDRAM streams about 560 MB of Q8_0 (or Q4_K) matrices from
// anonymous memory, in the file's layout and as resident panels, on 1 and
// 2 threads (LLAMA2_BENCH_DRAM=1): TinyLlama's 5632x2048 and stories110M's
// 768x768, whose 627 KB leave each call's streams little time to warm up.
func BenchmarkMatVecResidentDRAM(b *testing.B) {
	if os.Getenv("LLAMA2_BENCH_DRAM") == "" {
		b.Skip("set LLAMA2_BENCH_DRAM=1 to run")
	}
	for _, shape := range []struct {
		typ              gguf.Type
		rows, cols, mats int
	}{{gguf.TypeQ8_0, 5632, 2048, 50}, {gguf.TypeQ8_0, 768, 768, 900}, {gguf.TypeQ4_K, 5632, 2048, 90}} {
		benchResidentDRAM(b, shape.typ, shape.rows, shape.cols, shape.mats)
	}
}

func benchResidentDRAM(b *testing.B, typ gguf.Type, mrows, cols, mats int) {
	rows := mrows * mats
	bt := kernels.Block(typ)
	r := rand.New(rand.NewPCG(3, 4))
	x := newActivation(randomFloats(r, cols), actForm{gs: kernels.QBlock, sums: true, super: bt.SuperScale})
	x.quantize()
	rb := cols / bt.BlockSize * bt.BlockBytes
	w, free, _, err := allocAnon(rows * rb)
	require.NoError(b, err)
	b.Cleanup(func() { free() })
	pattern := randBlocks(r, bt, 64*cols/bt.BlockSize)
	for i := 0; i < len(w); i += len(pattern) {
		copy(w[i:], pattern)
	}
	out := make([]float32, rows)
	for _, layout := range []string{"file", "resident"} {
		t := tensor{rows: rows, cols: cols, b: w, blk: bt, rowBytes: rb}
		if layout == "resident" {
			require.True(b, t.makeResident())
		}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/%dx%d/%s/%dT", typ, mrows, cols, layout, threads), func(b *testing.B) {
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

// TestResidentModes opens the Q8_0, Q4_0, Q6_K, Q4_K_M and Q5_K_M twins
// of randk.bin mapped and read: read, their Q8_0, Q4_0, Q4_K, Q5_K and Q6_K
// matrices become resident panels (where this build has their kernels),
// the memory is read-only again, and both give llama.cpp's logits; Q8_0's,
// bit for bit, each other's (its resident kernels compute the file
// layout's sums, as Q4_0's do: internal/kernels's TestResidentKernels;
// the K-quants' sum in another order, and the Q4_0 file's classifier is
// Q6_K).
func TestResidentModes(t *testing.T) {
	for _, c := range []struct {
		file, types string // types: those made resident, as Format lists them
		all         bool   // every matrix is resident
		bitwise     bool   // mapped and read give the same logits, bit for bit
	}{{"Q8_0", "Q8_0", true, true}, {"Q4_0", "Q4_0, Q6_K", true, false}, {"Q6_K", "Q6_K", true, false}, {"Q4_K_M", "Q4_K, Q6_K", false, false}, {"Q5_K_M", "Q5_K, Q6_K", false, false}} {
		t.Run(c.file, func(t *testing.T) {
			path := fixture(t, "gguf/randk-"+c.file+".gguf")
			tokens := readInts(t, fixture(t, "golden/gguf/teacher-tokens.txt"))
			var logits [2][]float32
			for i, mode := range loadModes {
				m, err := OpenWith(path, OpenOptions{Mmap: mode})
				require.NoError(t, err)
				want := readLogits(t, fixture(t, "golden/gguf/randk-"+c.file+".logits.f32"), m.Config.VocabSize)
				resident, typed := 0, 0
				for l := range m.w.layers {
					lw := &m.w.layers[l]
					for _, w := range []*tensor{&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w1, &lw.w2, &lw.w3} {
						if strings.Contains(c.types, w.blk.Type.String()) {
							typed++
						}
						if w.blk.Resident {
							resident++
							require.Contains(t, c.types, w.blk.Type.String())
						}
					}
				}
				if mode == MmapOff && kernels.ResidentKernels && canMmap {
					require.Positive(t, typed)
					require.Equal(t, typed, resident, "every %s matrix is whole panels", c.types)
					if c.all {
						require.Equal(t, 7*len(m.w.layers), resident)
					}
					require.Contains(t, m.Format(), "; "+c.types+" in panels)")
					if runtime.GOOS == "linux" {
						require.Equal(t, "r--p", mappingPerms(t, addrOf(m.w.layers[0].wq.b)), "read-only again")
					}
				} else {
					require.Zero(t, resident, mode)
					require.NotContains(t, m.Format(), "in panels")
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
			if c.bitwise {
				require.Equal(t, logits[0], logits[1], "mapped and read")
			}
		})
	}
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
