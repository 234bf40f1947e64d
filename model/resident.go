package model

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/llama2-go/llama2/gguf"
)

// # Resident panels: Q8_0 repacked once, when the weights are read
//
// The batched Q8_0 kernels repack 16 rows at a time into panels (see
// ../asm/gguf/panel.go): one zmm holds the same 4 values of all 16 rows,
// so VPDPBUSD with one activation dword broadcast accumulates 16 rows'
// block sums in its 16 lanes, with no horizontal sums. Weights read into
// anonymous memory (MmapOff, or MmapAuto's choice) are given that layout
// once, at load, in place: a block of 16 rows then costs generation 8
// loads, 8 VPDPBUSD and 6 other instructions (../asm/gguf/resident.go)
// where the file's layout costs about 13 instructions per 64 bytes and
// row, and prompts skip the packing.
//
// Measured on the 2-core Zen 5 VM, tg128 tok/s, medians of 4 alternated
// runs, file's layout -> resident: stories42M-shaped Q8_0 557 -> 596 (1
// thread), 1002 -> 1127 (2); stories110M 196 -> 207 (1; 2 threads: 340
// -> 312 with runs from 196 to 401 on both sides). TinyLlama-shaped,
// tg32, medians of 6: 24.8 -> 26.9 (1), 38.1 -> 44.3 (2). From L2 the
// kernel reads 150 GB/s against 67 (BenchmarkMatVecResidentL2); from
// memory the gain is smaller and the VM's noise larger.
//
// A resident tensor is a run of panels of residentRows rows; a panel is
// nb resident blocks of residentBlockBytes, block b holding the rows'
// blocks b: for step j < 8, bytes 64j+4r..64j+4r+3 are row r's values
// 4j..4j+3 XOR 0x80 (unsigned: w+128), then bytes 512+2r, 513+2r row r's d
// (float16). That is exactly the bytes of the 16 rows in the file's
// layout, so rowBytes and row ranges in bytes stay those of Q8_0.
const (
	residentRows       = 16
	residentBlockBytes = residentRows * q8_0Bytes
)

// q8_0Resident is the block type of Q8_0 tensors repacked into resident
// panels. Row ranges passed to its kernels start and end on panels; mulRows
// and rowsView take care of the others.
var q8_0Resident = &blockType{
	typ: gguf.TypeQ8_0, blockSize: qBlock, blockBytes: q8_0Bytes,
	matVec: matVecResidentQ8_0, matMat: matMatResidentQ8_0,
	resident: true,
}

// makeResident repacks w's Q8_0 matrices into resident panels when this
// build has their kernels and the weights were read into private memory
// (never a mapped file: it is read-only and shared), and every cut of the
// rows between threads falls on a panel: the threads' chunks are rowGrain
// rows of the stacked products (q, k, v; w1, w3) and Dim and KVDim are
// whole panels. The token embedding is repacked only when it is also the
// classifier. It reports whether it repacked any.
func (w *weights) makeResident(cfg *Config) (bool, error) {
	if !residentKernels || rowGrain%residentRows != 0 || cfg.Dim%residentRows != 0 || cfg.KVDim()%residentRows != 0 {
		return false, nil
	}
	ts := []*tensor{&w.classifier}
	for i := range w.layers {
		l := &w.layers[i]
		ts = append(ts, &l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w2, &l.w3)
	}
	var repacked atomic.Bool
	_, err := rewriteWeights(w.classifier.b, func() {
		// All views into the one file, each tensor's bytes its own: one
		// goroutine a core (TinyLlama Q8_0, 1.1 GB: 0.42 s on one core, 0.24
		// on two, on top of 0.31 s to read it from the page cache).
		var wg sync.WaitGroup
		cores := make(chan struct{}, runtime.GOMAXPROCS(0))
		for _, t := range ts {
			cores <- struct{}{}
			wg.Go(func() {
				defer func() { <-cores }()
				if t.makeResident() {
					repacked.Store(true)
				}
			})
		}
		wg.Wait()
	})
	if e := &w.tokenEmbedding; len(e.b) > 0 && addrOf(e.b) == addrOf(w.classifier.b) {
		e.blk = w.classifier.blk
	}
	return repacked.Load(), err
}

// makeResident repacks t's rows in place into resident panels if t is
// Q8_0 in whole panels, and reports whether it did.
func (t *tensor) makeResident() bool {
	if t.blk != blockTypes[gguf.TypeQ8_0] || t.rows%residentRows != 0 || t.rows == 0 || t.cols == 0 {
		return false
	}
	nb := t.cols / qBlock
	panel := make([]byte, residentRows*t.rowBytes)
	for p := 0; p < t.rows; p += residentRows {
		dst := t.b[p*t.rowBytes : (p+residentRows)*t.rowBytes]
		copy(panel, dst)
		packResident(dst, panel, nb)
	}
	t.blk = q8_0Resident
	return true
}

// packResident writes the resident panel of the 16 rows of nb Q8_0 blocks
// in rows (one after another) into dst.
func packResident(dst, rows []byte, nb int) {
	rb := nb * q8_0Bytes
	for b := range nb {
		blk := dst[b*residentBlockBytes : (b+1)*residentBlockBytes]
		for r := range residentRows {
			src := rows[r*rb+b*q8_0Bytes:][:q8_0Bytes]
			blk[512+2*r], blk[513+2*r] = src[0], src[1]
			for j := range 8 {
				v := binary.LittleEndian.Uint32(src[2+4*j:]) ^ 0x80808080
				binary.LittleEndian.PutUint32(blk[64*j+4*r:], v)
			}
		}
	}
}

// dequantResidentRow writes row r of the resident panel p (nb blocks) as
// float32 into dst (len(dst) = 32*nb).
func dequantResidentRow(dst []float32, p []byte, r int) {
	for b := range len(dst) / qBlock {
		blk := p[b*residentBlockBytes : (b+1)*residentBlockBytes]
		d := f16ToF32(le16(blk[512+2*r:]))
		for j := range 8 {
			for i := range 4 {
				dst[b*qBlock+4*j+i] = float32(int8(blk[64*j+4*r+i]^0x80)) * d
			}
		}
	}
}

// mulResident is mulRows for resident tensors: whole panels go to the
// kernel, the rows of a panel cut by lo or hi through a panel's worth of
// scratch.
func (t *tensor) mulResident(out []float32, lo int, x *activation) {
	hi := lo + len(out)
	for p := lo &^ (residentRows - 1); p < hi; {
		if p >= lo && p+residentRows <= hi {
			e := p + (hi-p)&^(residentRows-1)
			t.blk.matVec(out[p-lo:e-lo], t.b[p*t.rowBytes:e*t.rowBytes], x.q, x.s, x.sum)
			p = e
			continue
		}
		var tmp [residentRows]float32
		t.blk.matVec(tmp[:], t.b[p*t.rowBytes:(p+residentRows)*t.rowBytes], x.q, x.s, x.sum)
		a, e := max(p, lo), min(p+residentRows, hi)
		copy(out[a-lo:e-lo], tmp[a-p:e-p])
		p += residentRows
	}
}

// matVecResidentGo is the Go kernel of resident panels: out[r] = row r ·
// x for len(out) rows (a multiple of 16) in the arithmetic of the
// assembly, per block float32(sum) * d, then times xs[b] added to the
// row's total.
func matVecResidentGo(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	nb := len(xq) / qBlock
	for p0 := 0; p0 < len(out); p0 += residentRows {
		panel := p[p0/residentRows*nb*residentBlockBytes:]
		for r := range residentRows {
			var total float32
			for b := range nb {
				blk := panel[b*residentBlockBytes : (b+1)*residentBlockBytes]
				s := -128 * xsum[b]
				for j := range 8 {
					for i := range 4 {
						s += int32(blk[64*j+4*r+i]) * int32(xq[b*qBlock+4*j+i])
					}
				}
				t := float32(float32(s) * f16ToF32(le16(blk[512+2*r:])))
				total += t * xs[b]
			}
			out[p0+r] = total
		}
	}
}

// matMatResidentGo is matMat for resident panels in Go: one vector at a
// time.
func matMatResidentGo(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	n := len(xq) / batch
	nb := n / qBlock
	for v := range batch {
		matVecResidentGo(out[v*rows:(v+1)*rows], p, xq[v*n:(v+1)*n], xs[v*nb:(v+1)*nb], xsum[v*nb:(v+1)*nb])
	}
}
