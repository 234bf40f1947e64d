package kernels

import "github.com/llama2-go/llama2/gguf"

// # Resident Q6_K panels
//
// Q6_K tensors read into memory are repacked into panels of 16 rows as
// Q4_K's are (residentk.go; the kernels in ../asm/gguf/residentq6.go). A
// resident super-block is the 16 rows' super-blocks, 3360 bytes, exactly
// their bytes, in the order the kernels read them:
//   - byte q6ScOff+16j+r: row r's int8 scale of sub-block j (16 values);
//   - bytes q6DOff+2r, q6DOff+2r+1: row r's d;
//   - for half h < 2 and k < 8, three chunks of 64 bytes from
//     q6QOff+192*(8h+k): dword r of the first is row r's qh bytes
//     32h+4k.., of the second its ql bytes 64h+4k.., of the third its ql
//     bytes 64h+32+4k...
//
// Per row and super-block the kernels compute, in this order,
//
//	total += float32(Σ_j sc_j*Σ (q-32)*xq) * d * xs
//
// (the integer sum exact; Σ(q-32)xq as Σ q*xq - 32Σxq, the activation's
// sums over 16 values taken once per call by q6Aux).
const (
	q6ResBlockBytes = ResidentRows * q6KBytes
	q6ScOff         = 0
	q6DOff          = q6ScOff + 16*ResidentRows
	q6QOff          = q6DOff + 2*ResidentRows
)

var residentQ6_K = &residentLayout{
	blockBytes: q6ResBlockBytes,
	pack: func(blk, src []byte, r int) {
		for j := range 16 {
			blk[q6ScOff+ResidentRows*j+r] = src[192+j]
		}
		copy(blk[q6DOff+2*r:][:2], src[208:])
		for h := range 2 {
			for k := range 8 {
				c := blk[q6QOff+192*(8*h+k)+4*r:]
				copy(c[:4], src[128+32*h+4*k:])
				copy(c[64:][:4], src[64*h+4*k:])
				copy(c[128:][:4], src[64*h+32+4*k:])
			}
		}
	},
	unpack: func(blk, dst []byte, r int) {
		for j := range 16 {
			dst[192+j] = blk[q6ScOff+ResidentRows*j+r]
		}
		copy(dst[208:210], blk[q6DOff+2*r:])
		for h := range 2 {
			for k := range 8 {
				c := blk[q6QOff+192*(8*h+k)+4*r:]
				copy(dst[128+32*h+4*k:][:4], c)
				copy(dst[64*h+4*k:][:4], c[64:])
				copy(dst[64*h+32+4*k:][:4], c[128:])
			}
		}
	},
}

// Q6_KResident is Q4_KResident for Q6_K tensors.
var Q6_KResident = &BlockType{
	Type: gguf.TypeQ6_K, BlockSize: qkK, BlockBytes: q6KBytes,
	MatVec: matVecResidentQ6_K, MatMat: matMatResidentQ6_K,
	SuperScale: true, Resident: true, resident: residentQ6_K,
}

// matVecResidentQ6_KGo is the Go kernel of resident Q6_K panels, in the
// order above with the float32 products rounded one at a time.
func matVecResidentQ6_KGo(out []float32, p []byte, xq []int8, xs []float32, _ []int32) {
	nsb := len(xq) / qkK
	var src [q6KBytes]byte
	var y [qkK]int32
	for p0 := 0; p0 < len(out); p0 += ResidentRows {
		panel := p[p0/ResidentRows*nsb*q6ResBlockBytes:]
		for r := range ResidentRows {
			var total float32
			for sb := range nsb {
				residentQ6_K.unpack(panel[sb*q6ResBlockBytes:(sb+1)*q6ResBlockBytes], src[:], r)
				for h := range 2 {
					ql, qh := src[64*h:], src[128+32*h:]
					for l := range 32 {
						y[128*h+l] = int32(ql[l]&0xf | (qh[l]&3)<<4)
						y[128*h+32+l] = int32(ql[32+l]&0xf | (qh[l]>>2&3)<<4)
						y[128*h+64+l] = int32(ql[l]>>4 | (qh[l]>>4&3)<<4)
						y[128*h+96+l] = int32(ql[32+l]>>4 | (qh[l]>>6&3)<<4)
					}
				}
				var sumi int32
				for j := range 16 {
					var a int32
					for l := range 16 {
						a += (y[16*j+l] - 32) * int32(xq[qkK*sb+16*j+l])
					}
					sumi += int32(int8(src[192+j])) * a
				}
				total += float32(sumi) * kqHalf(src[208:]) * xs[8*sb]
			}
			out[p0+r] = total
		}
	}
}

// matMatResidentQ6_KGo is MatMat for resident Q6_K panels in Go: one
// vector at a time.
func matMatResidentQ6_KGo(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatByVector(matVecResidentQ6_KGo, out, rows, p, xq, xs, xsum, batch)
}
