package kernels

import "github.com/llama2-go/llama2/gguf"

// # Resident Q4_K panels
//
// Q4_K tensors read into memory are repacked, like Q4_0's (resident.go),
// into panels of 16 rows with the rows in the dword lanes, so that
// generation and prompts read 16 rows' sub-block sums out of VPDPBUSD
// whole (../asm/gguf/residentk.go). A resident super-block is the 16 rows'
// super-blocks, 2304 bytes, exactly their bytes in the file, in the order
// the kernels read them:
//   - byte kScOff+16i+r: row r's byte i of scales[12];
//   - bytes kDOff+2r, kDOff+2r+1: row r's d; kDminOff+2r..: its dmin;
//   - bytes kQsOff+64c+4r..+3, c = 8g+k < 32: row r's qs bytes 32g+4k..
//     (low nibbles values 4k.. of sub-block 2g, high nibbles of 2g+1).
//
// Per row and super-block the kernels compute, in this order,
//
//	f = float32(Σ_j sc_j*Σ q*xq) * d - float32(Σ_j m_j*xsum_j) * dmin
//	total += f * xs
//
// (the integer sums are exact, the first line one FMA), where the file's
// kernels (kquant.go) sum in another order: the results agree within the
// K-quant kernels' tolerance, not bit for bit.
const (
	kResBlockBytes = ResidentRows * q4KBytes
	kScOff         = 0
	kDOff          = kScOff + 12*ResidentRows
	kDminOff       = kDOff + 2*ResidentRows
	kQsOff         = kDminOff + 2*ResidentRows
)

var residentQ4_K = &residentLayout{
	blockBytes: kResBlockBytes,
	pack: func(blk, src []byte, r int) {
		copy(blk[kDOff+2*r:][:2], src[0:])
		copy(blk[kDminOff+2*r:][:2], src[2:])
		for i := range 12 {
			blk[kScOff+ResidentRows*i+r] = src[4+i]
		}
		for c := range 32 {
			copy(blk[kQsOff+64*c+4*r:][:4], src[16+4*c:])
		}
	},
	unpack: func(blk, dst []byte, r int) {
		copy(dst[0:2], blk[kDOff+2*r:])
		copy(dst[2:4], blk[kDminOff+2*r:])
		for i := range 12 {
			dst[4+i] = blk[kScOff+ResidentRows*i+r]
		}
		for c := range 32 {
			copy(dst[16+4*c:][:4], blk[kQsOff+64*c+4*r:])
		}
	},
}

// Q4_KResident is Q8_0Resident for Q4_K tensors: its kernels want the
// activation's scales equal within each super-block, as Q4_K's.
var Q4_KResident = &BlockType{
	Type: gguf.TypeQ4_K, BlockSize: qkK, BlockBytes: q4KBytes,
	MatVec: matVecResidentQ4_K, MatMat: matMatResidentQ4_K,
	SuperScale: true, Resident: true, resident: residentQ4_K,
}

// matVecResidentQ4_KGo is the Go kernel of resident Q4_K panels, in the
// order above with the float32 products rounded one at a time.
func matVecResidentQ4_KGo(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	nsb := len(xq) / qkK
	var src [q4KBytes]byte
	for p0 := 0; p0 < len(out); p0 += ResidentRows {
		panel := p[p0/ResidentRows*nsb*kResBlockBytes:]
		for r := range ResidentRows {
			var total float32
			for sb := range nsb {
				residentQ4_K.unpack(panel[sb*kResBlockBytes:(sb+1)*kResBlockBytes], src[:], r)
				sc, m := kScales(src[4:16])
				var sumi, msum int32
				for j := range 8 {
					var a int32
					for l := range 32 {
						q := src[16+32*(j/2)+l] >> (4 * (j % 2)) & 0x0f
						a += int32(q) * int32(xq[qkK*sb+32*j+l])
					}
					sumi += int32(sc[j]) * a
					msum += int32(m[j]) * xsum[8*sb+j]
				}
				f := float32(sumi)*kqHalf(src[0:]) - float32(msum)*kqHalf(src[2:])
				total += f * xs[8*sb]
			}
			out[p0+r] = total
		}
	}
}

// matMatResidentQ4_KGo is MatMat for resident Q4_K panels in Go: one
// vector at a time.
func matMatResidentQ4_KGo(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	n := len(xq) / batch
	nb := n / QBlock
	for v := range batch {
		matVecResidentQ4_KGo(out[v*rows:(v+1)*rows], p, xq[v*n:(v+1)*n], xs[v*nb:(v+1)*nb], xsum[v*nb:(v+1)*nb])
	}
}
