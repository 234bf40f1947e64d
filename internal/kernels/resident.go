package kernels

import (
	"encoding/binary"

	"github.com/llama2-go/llama2/gguf"
)

// # Resident panels: Q8_0 and Q4_0 repacked once, when the weights are read
//
// (Q4_K's and Q6_K's panels, in residentk.go and residentq6.go, share the
// packing and the model's side with these.)
//
// The batched kernels repack 16 rows at a time into panels (see
// ../asm/gguf/panel.go): one zmm holds the same 4 values of all 16 rows,
// so VPDPBUSD with one activation dword broadcast accumulates 16 rows'
// block sums in its 16 lanes, with no horizontal sums. Weights read into
// anonymous memory (MmapOff, or MmapAuto's choice) are given a panel
// layout once, at load, in place: generation then reads 16 rows' blocks
// with no sums to fold (../asm/gguf/resident.go), and prompts skip the
// packing.
//
// Q8_0, measured on the 2-core Zen 5 VM, tg128 tok/s, medians of 4
// alternated runs, file's layout -> resident: stories42M-shaped 557 ->
// 596 (1 thread), 1002 -> 1127 (2); stories110M 196 -> 207 (1; 2 threads:
// 340 -> 312 with runs from 196 to 401 on both sides). TinyLlama-shaped,
// tg32, medians of 6: 24.8 -> 26.9 (1), 38.1 -> 44.3 (2). From L2 the
// kernel reads 150 GB/s against 67 (BenchmarkMatVecResidentL2); from
// memory the gain is smaller and the VM's noise larger.
//
// Q4_0 in the file's layout is compute-bound (about 56 instructions per
// 4 rows and 2 blocks, at half the bandwidth on Zen 4); resident, 16 rows'
// block costs 30.
//
// A resident tensor is a run of panels of ResidentRows rows; a panel is
// nb resident blocks, block b holding the rows' blocks b, exactly the
// bytes of the 16 rows in the file's layout (so rowBytes and row ranges in
// bytes stay the file's):
//   - Q8_0 (544 bytes): for step j < 8, bytes 64j+4r..64j+4r+3 are row r's
//     values 4j..4j+3 XOR 0x80 (unsigned: w+128), then bytes 512+2r,
//     513+2r row r's d (float16).
//   - Q4_0 (288 bytes): for chunk k < 4, bytes 64k+4r..64k+4r+3 are row
//     r's qs bytes 4k..4k+3 (low nibbles values 4k.., high nibbles values
//     16+4k..; unsigned: w+8), then bytes 256+2r, 257+2r row r's d.
const ResidentRows = 16

// residentLayout is one block type's resident panels.
type residentLayout struct {
	blockBytes int   // ResidentRows of the file's blocks
	c          int32 // the stored values are the values plus c
	// u returns the stored value i of row r in the resident block blk.
	u func(blk []byte, r, i int) int32
	// pack writes row r's block src (the file's layout) into blk; unpack
	// is its inverse.
	pack, unpack func(blk, src []byte, r int)
}

// dOff is where a resident block's 16 float16 d start.
func (l *residentLayout) dOff() int { return l.blockBytes - 2*ResidentRows }

var (
	residentQ8_0 = &residentLayout{
		blockBytes: ResidentRows * q8_0Bytes, c: 128,
		u: func(blk []byte, r, i int) int32 { return int32(blk[64*(i/4)+4*r+i%4]) },
		pack: func(blk, src []byte, r int) {
			packD(blk, src, r, q8_0Bytes)
			for j := range 8 {
				v := binary.LittleEndian.Uint32(src[2+4*j:]) ^ 0x80808080
				binary.LittleEndian.PutUint32(blk[64*j+4*r:], v)
			}
		},
		unpack: func(blk, dst []byte, r int) {
			unpackD(blk, dst, r, q8_0Bytes)
			for j := range 8 {
				v := binary.LittleEndian.Uint32(blk[64*j+4*r:]) ^ 0x80808080
				binary.LittleEndian.PutUint32(dst[2+4*j:], v)
			}
		},
	}
	residentQ4_0 = &residentLayout{
		blockBytes: ResidentRows * q4_0Bytes, c: 8,
		u: func(blk []byte, r, i int) int32 {
			q := blk[64*(i%16/4)+4*r+i%4]
			if i >= 16 {
				return int32(q >> 4)
			}
			return int32(q & 0x0f)
		},
		pack: func(blk, src []byte, r int) {
			packD(blk, src, r, q4_0Bytes)
			for k := range 4 {
				copy(blk[64*k+4*r:][:4], src[2+4*k:])
			}
		},
		unpack: func(blk, dst []byte, r int) {
			unpackD(blk, dst, r, q4_0Bytes)
			for k := range 4 {
				copy(dst[2+4*k:][:4], blk[64*k+4*r:])
			}
		},
	}
)

// packD copies row r's d (the first 2 bytes of its block src) to its place
// in a resident block of 16 blocks of blockBytes; unpackD is its inverse.
func packD(blk, src []byte, r, blockBytes int) {
	copy(blk[ResidentRows*(blockBytes-2)+2*r:][:2], src)
}

func unpackD(blk, dst []byte, r, blockBytes int) {
	copy(dst[:2], blk[ResidentRows*(blockBytes-2)+2*r:])
}

// Q8_0Resident is the block type of Q8_0 tensors repacked into resident
// panels. Row ranges passed to its kernels start and end on panels (the
// caller takes care of the others); rows are read with DequantResidentRow.
var Q8_0Resident = &BlockType{
	Type: gguf.TypeQ8_0, BlockSize: QBlock, BlockBytes: q8_0Bytes,
	MatVec: matVecResidentQ8_0, MatMat: matMatResidentQ8_0,
	Resident: true, resident: residentQ8_0,
}

// Q4_0Resident is Q8_0Resident for Q4_0 tensors.
var Q4_0Resident = &BlockType{
	Type: gguf.TypeQ4_0, BlockSize: QBlock, BlockBytes: q4_0Bytes,
	MatVec: matVecResidentQ4_0, MatMat: matMatResidentQ4_0,
	Resident: true, resident: residentQ4_0,
}

// ResidentOf returns the resident block type of bt's tensors, or nil when
// bt has none.
func ResidentOf(bt *BlockType) *BlockType {
	switch bt {
	case Block(gguf.TypeQ8_0):
		return Q8_0Resident
	case Block(gguf.TypeQ4_0):
		return Q4_0Resident
	case Block(gguf.TypeQ4_K):
		return Q4_KResident
	case Block(gguf.TypeQ5_K):
		return Q5_KResident
	case Block(gguf.TypeQ6_K):
		return Q6_KResident
	}
	return nil
}

// PackResident writes the resident panel (of block type res) of the 16
// rows of nb blocks in rows (one after another, the file's layout) into
// dst.
func PackResident(res *BlockType, dst, rows []byte, nb int) {
	l := res.resident
	rb := nb * res.BlockBytes
	for b := range nb {
		blk := dst[b*l.blockBytes : (b+1)*l.blockBytes]
		for r := range ResidentRows {
			l.pack(blk, rows[r*rb+b*res.BlockBytes:][:res.BlockBytes], r)
		}
	}
}

// DequantResidentRow writes row r of the resident panel p (of block type
// res) as float32 into dst (len(dst) a multiple of res.BlockSize): the
// values of the file's Dequant, bit for bit.
func DequantResidentRow(res *BlockType, dst []float32, p []byte, r int) {
	l := res.resident
	file := Block(res.Type)
	src := make([]byte, res.BlockBytes)
	for b := range len(dst) / res.BlockSize {
		l.unpack(p[b*l.blockBytes:(b+1)*l.blockBytes], src, r)
		file.Dequant(dst[b*res.BlockSize:(b+1)*res.BlockSize], src)
	}
}

// matVecResidentGo is the Go kernel of resident panels of layout l: out[r]
// = row r · x for len(out) rows (a multiple of 16) in the arithmetic of
// the assembly, per block float32(sum) * d, then times xs[b] added to the
// row's total.
func matVecResidentGo(l *residentLayout, out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	nb := len(xq) / QBlock
	for p0 := 0; p0 < len(out); p0 += ResidentRows {
		panel := p[p0/ResidentRows*nb*l.blockBytes:]
		for r := range ResidentRows {
			var total float32
			for b := range nb {
				blk := panel[b*l.blockBytes : (b+1)*l.blockBytes]
				s := -l.c * xsum[b]
				for i := range QBlock {
					s += l.u(blk, r, i) * int32(xq[b*QBlock+i])
				}
				t := float32(float32(s) * F16ToF32(le16(blk[l.dOff()+2*r:])))
				total += t * xs[b]
			}
			out[p0+r] = total
		}
	}
}

// matMatResidentGo is MatMat for resident panels in Go: one vector at a
// time.
func matMatResidentGo(l *residentLayout, out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	n := len(xq) / batch
	nb := n / QBlock
	for v := range batch {
		matVecResidentGo(l, out[v*rows:(v+1)*rows], p, xq[v*n:(v+1)*n], xs[v*nb:(v+1)*nb], xsum[v*nb:(v+1)*nb])
	}
}
