package kernels

import (
	"encoding/binary"

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
// A resident tensor is a run of panels of ResidentRows rows; a panel is
// nb resident blocks of residentBlockBytes, block b holding the rows'
// blocks b: for step j < 8, bytes 64j+4r..64j+4r+3 are row r's values
// 4j..4j+3 XOR 0x80 (unsigned: w+128), then bytes 512+2r, 513+2r row r's d
// (float16). That is exactly the bytes of the 16 rows in the file's
// layout, so rowBytes and row ranges in bytes stay those of Q8_0.
const (
	ResidentRows       = 16
	residentBlockBytes = ResidentRows * q8_0Bytes
)

// Q8_0Resident is the block type of Q8_0 tensors repacked into resident
// panels. Row ranges passed to its kernels start and end on panels (the
// caller takes care of the others); rows are read with DequantResidentRow.
var Q8_0Resident = &BlockType{
	Type: gguf.TypeQ8_0, BlockSize: QBlock, BlockBytes: q8_0Bytes,
	MatVec: matVecResidentQ8_0, MatMat: matMatResidentQ8_0,
	Resident: true,
}

// PackResident writes the resident panel of the 16 rows of nb Q8_0 blocks
// in rows (one after another) into dst.
func PackResident(dst, rows []byte, nb int) {
	rb := nb * q8_0Bytes
	for b := range nb {
		blk := dst[b*residentBlockBytes : (b+1)*residentBlockBytes]
		for r := range ResidentRows {
			src := rows[r*rb+b*q8_0Bytes:][:q8_0Bytes]
			blk[512+2*r], blk[513+2*r] = src[0], src[1]
			for j := range 8 {
				v := binary.LittleEndian.Uint32(src[2+4*j:]) ^ 0x80808080
				binary.LittleEndian.PutUint32(blk[64*j+4*r:], v)
			}
		}
	}
}

// DequantResidentRow writes row r of the resident panel p (nb blocks) as
// float32 into dst (len(dst) = 32*nb).
func DequantResidentRow(dst []float32, p []byte, r int) {
	for b := range len(dst) / QBlock {
		blk := p[b*residentBlockBytes : (b+1)*residentBlockBytes]
		d := F16ToF32(le16(blk[512+2*r:]))
		for j := range 8 {
			for i := range 4 {
				dst[b*QBlock+4*j+i] = float32(int8(blk[64*j+4*r+i]^0x80)) * d
			}
		}
	}
}

// matVecResidentGo is the Go kernel of resident panels: out[r] = row r ·
// x for len(out) rows (a multiple of 16) in the arithmetic of the
// assembly, per block float32(sum) * d, then times xs[b] added to the
// row's total.
func matVecResidentGo(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	nb := len(xq) / QBlock
	for p0 := 0; p0 < len(out); p0 += ResidentRows {
		panel := p[p0/ResidentRows*nb*residentBlockBytes:]
		for r := range ResidentRows {
			var total float32
			for b := range nb {
				blk := panel[b*residentBlockBytes : (b+1)*residentBlockBytes]
				s := -128 * xsum[b]
				for j := range 8 {
					for i := range 4 {
						s += int32(blk[64*j+4*r+i]) * int32(xq[b*QBlock+4*j+i])
					}
				}
				t := float32(float32(s) * F16ToF32(le16(blk[512+2*r:])))
				total += t * xs[b]
			}
			out[p0+r] = total
		}
	}
}

// matMatResidentGo is MatMat for resident panels in Go: one vector at a
// time.
func matMatResidentGo(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	n := len(xq) / batch
	nb := n / QBlock
	for v := range batch {
		matVecResidentGo(out[v*rows:(v+1)*rows], p, xq[v*n:(v+1)*n], xs[v*nb:(v+1)*nb], xsum[v*nb:(v+1)*nb])
	}
}
