package kernels

import "github.com/llama2-go/llama2/gguf"

// # Resident Q4_K and Q5_K panels
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
		packKHeader(blk, src, r)
		for c := range 32 {
			copy(blk[kQsOff+64*c+4*r:][:4], src[16+4*c:])
		}
	},
	unpack: func(blk, dst []byte, r int) {
		unpackKHeader(blk, dst, r)
		for c := range 32 {
			copy(dst[16+4*c:][:4], blk[kQsOff+64*c+4*r:])
		}
	},
}

// packKHeader puts row r's d, dmin and scales (its super-block's first 16
// bytes, src) into the resident super-block blk; unpackKHeader takes them
// back.
func packKHeader(blk, src []byte, r int) {
	copy(blk[kDOff+2*r:][:2], src[0:])
	copy(blk[kDminOff+2*r:][:2], src[2:])
	for i := range 12 {
		blk[kScOff+ResidentRows*i+r] = src[4+i]
	}
}

func unpackKHeader(blk, dst []byte, r int) {
	copy(dst[0:2], blk[kDOff+2*r:])
	copy(dst[2:4], blk[kDminOff+2*r:])
	for i := range 12 {
		dst[4+i] = blk[kScOff+ResidentRows*i+r]
	}
}

// Q4_KResident is Q8_0Resident for Q4_K tensors: its kernels want the
// activation's scales equal within each super-block, as Q4_K's.
var Q4_KResident = &BlockType{
	Type: gguf.TypeQ4_K, BlockSize: qkK, BlockBytes: q4KBytes,
	MatVec: matVecResidentQ4_K, MatMat: matMatResidentQ4_K,
	SuperScale: true, Resident: true, resident: residentQ4_K,
}

// # Q5_K
//
// A resident Q5_K super-block (2816 bytes) is Q4_K's with the 16 rows' qh
// among the quants, each qh chunk before the first chunk of nibbles that
// uses it, so that the kernels read the panel in order: from kQsOff,
// for k < 8, 64 bytes of qh (bytes 4r..4r+3: row r's qh bytes 4k..4k+3,
// whose bit j is the fifth bit of value 4k.. of sub-block j) then nibble
// chunk k; then nibble chunks 8-31. The kernels put each fifth bit into
// bit 4 of its nibble (a shift, an AND and a bit select per sub-block)
// and go on as Q4_K's.
const q5ResBlockBytes = ResidentRows * q5KBytes

// q5QhAt and q5QsAt are the offsets of qh chunk k and nibble chunk c in a
// resident Q5_K super-block.
func q5QhAt(k int) int { return kQsOff + 128*k }

func q5QsAt(c int) int {
	if c < 8 {
		return kQsOff + 128*c + 64
	}
	return kQsOff + 1024 + 64*(c-8)
}

var residentQ5_K = &residentLayout{
	blockBytes: q5ResBlockBytes,
	pack: func(blk, src []byte, r int) {
		packKHeader(blk, src, r)
		for k := range 8 {
			copy(blk[q5QhAt(k)+4*r:][:4], src[16+4*k:])
		}
		for c := range 32 {
			copy(blk[q5QsAt(c)+4*r:][:4], src[48+4*c:])
		}
	},
	unpack: func(blk, dst []byte, r int) {
		unpackKHeader(blk, dst, r)
		for k := range 8 {
			copy(dst[16+4*k:][:4], blk[q5QhAt(k)+4*r:])
		}
		for c := range 32 {
			copy(dst[48+4*c:][:4], blk[q5QsAt(c)+4*r:])
		}
	},
}

// Q5_KResident is Q4_KResident for Q5_K tensors.
var Q5_KResident = &BlockType{
	Type: gguf.TypeQ5_K, BlockSize: qkK, BlockBytes: q5KBytes,
	MatVec: matVecResidentQ5_K, MatMat: matMatResidentQ5_K,
	SuperScale: true, Resident: true, resident: residentQ5_K,
}

// matVecResidentQ4_KGo is the Go kernel of resident Q4_K panels, in the
// order above with the float32 products rounded one at a time.
func matVecResidentQ4_KGo(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	matVecResidentQ45Go(residentQ4_K, q4KBytes, out, p, xq, xs, xsum)
}

// matVecResidentQ5_KGo is matVecResidentQ4_KGo for Q5_K.
func matVecResidentQ5_KGo(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	matVecResidentQ45Go(residentQ5_K, q5KBytes, out, p, xq, xs, xsum)
}

// matVecResidentQ45Go multiplies resident Q4_K or Q5_K panels (of layout
// l, blockBytes a file's super-block) by a vector, unpacking each row's
// super-block to the file's bytes.
func matVecResidentQ45Go(l *residentLayout, blockBytes int, out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	nsb := len(xq) / qkK
	var src [q5KBytes]byte
	qh, qs := []byte(nil), src[16:144] // Q4_K
	if blockBytes == q5KBytes {
		qh, qs = src[16:48], src[48:176]
	}
	for p0 := 0; p0 < len(out); p0 += ResidentRows {
		panel := p[p0/ResidentRows*nsb*l.blockBytes:]
		for r := range ResidentRows {
			var total float32
			for sb := range nsb {
				l.unpack(panel[sb*l.blockBytes:(sb+1)*l.blockBytes], src[:blockBytes], r)
				sc, m := kScales(src[4:16])
				var sumi, msum int32
				for j := range 8 {
					var a int32
					for i := range 32 {
						q := qs[32*(j/2)+i] >> (4 * (j % 2)) & 0x0f
						if qh != nil {
							q |= qh[i] >> j & 1 << 4
						}
						a += int32(q) * int32(xq[qkK*sb+32*j+i])
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
	matMatByVector(matVecResidentQ4_KGo, out, rows, p, xq, xs, xsum, batch)
}

// matMatResidentQ5_KGo is matMatResidentQ4_KGo for Q5_K.
func matMatResidentQ5_KGo(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatByVector(matVecResidentQ5_KGo, out, rows, p, xq, xs, xsum, batch)
}

// matMatByVector is MatMat as one matVec per vector of the batch.
func matMatByVector(matVec func(out []float32, p []byte, xq []int8, xs []float32, xsum []int32), out []float32, rows int, p []byte, xq []int8, xs []float32, xsum []int32, batch int) {
	n := len(xq) / batch
	nb := n / QBlock
	for v := range batch {
		matVec(out[v*rows:(v+1)*rows], p, xq[v*n:(v+1)*n], xs[v*nb:(v+1)*nb], xsum[v*nb:(v+1)*nb])
	}
}
