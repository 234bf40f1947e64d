//go:build arm64 && !purego

#include "textflag.h"

// NEON float32 kernels; kernels_arm64.go declares them and shows the loop
// each computes. Written by hand: avo does not target arm64.
//
// Go's arm64 assembler has VFMLA but none of the other vector
// floating-point instructions these kernels need, so they are emitted as
// WORDs by the macros below (operands are register numbers; each macro
// names the instruction and its A64 encoding, from the Arm ARM, with the
// register fields Rm<<16 | Rn<<5 | Rd).
//
// Register use: R0-R17, R19-R25 and V0-V31 are free in ABI0 functions (R18
// is the platform register, R26-R30 are Go's).

// FADD Vd.4S, Vn.4S, Vm.4S
#define FADD4S(m, n, d) WORD $(0x4e20d400 | (m)<<16 | (n)<<5 | (d))
// FMUL Vd.4S, Vn.4S, Vm.4S
#define FMUL4S(m, n, d) WORD $(0x6e20dc00 | (m)<<16 | (n)<<5 | (d))
// FADDP Vd.4S, Vn.4S, Vm.4S: pairwise sums, Vn's pairs in the low half.
#define FADDP4S(m, n, d) WORD $(0x6e20d400 | (m)<<16 | (n)<<5 | (d))
// FADDP Sd, Vn.2S: Vn.S[0] + Vn.S[1].
#define FADDP2S(n, d) WORD $(0x7e30d800 | (n)<<5 | (d))

// func dotNEON(x, y []float32) float32
TEXT ·dotNEON(SB), NOSPLIT, $0-52
	MOVD x_base+0(FP), R0
	MOVD x_len+8(FP), R2
	MOVD y_base+24(FP), R1
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	LSR  $4, R2, R3
	CBZ  R3, dot4

	// 16 floats a pass into four independent sums (FMLA's latency is 4
	// cycles on most cores, with two or four pipes).
dot16:
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P 64(R1), [V16.S4, V17.S4, V18.S4, V19.S4]
	VFMLA  V4.S4, V16.S4, V0.S4
	VFMLA  V5.S4, V17.S4, V1.S4
	VFMLA  V6.S4, V18.S4, V2.S4
	VFMLA  V7.S4, V19.S4, V3.S4
	SUBS   $1, R3, R3
	BNE    dot16

dot4:
	AND $15, R2, R3
	LSR $2, R3, R3
	CBZ R3, dotsum

dot4loop:
	VLD1.P 16(R0), [V4.S4]
	VLD1.P 16(R1), [V16.S4]
	VFMLA  V4.S4, V16.S4, V0.S4
	SUBS   $1, R3, R3
	BNE    dot4loop

dotsum:
	FADD4S(1, 0, 0)
	FADD4S(3, 2, 2)
	FADD4S(2, 0, 0)
	FADDP4S(0, 0, 0)
	FADDP2S(0, 0)
	AND    $3, R2, R3
	CBZ    R3, dotdone

dot1:
	FMOVS.P 4(R0), F4
	FMOVS.P 4(R1), F5
	FMADDS  F5, F0, F4, F0 // F0 += F4*F5
	SUBS    $1, R3, R3
	BNE     dot1

dotdone:
	FMOVS F0, ret+48(FP)
	RET

// func axpyNEON(a float32, x, y []float32)
TEXT ·axpyNEON(SB), NOSPLIT, $0-56
	FMOVS a+0(FP), F31
	VDUP  V31.S[0], V30.S4
	MOVD  x_base+8(FP), R0
	MOVD  x_len+16(FP), R2
	MOVD  y_base+32(FP), R1
	LSR   $4, R2, R3
	CBZ   R3, axpy4

axpy16:
	VLD1.P 64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1   (R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	VFMLA  V0.S4, V30.S4, V4.S4
	VFMLA  V1.S4, V30.S4, V5.S4
	VFMLA  V2.S4, V30.S4, V6.S4
	VFMLA  V3.S4, V30.S4, V7.S4
	VST1.P [V4.S4, V5.S4, V6.S4, V7.S4], 64(R1)
	SUBS   $1, R3, R3
	BNE    axpy16

axpy4:
	AND $15, R2, R3
	LSR $2, R3, R3
	CBZ R3, axpytail

axpy4loop:
	VLD1.P 16(R0), [V0.S4]
	VLD1   (R1), [V4.S4]
	VFMLA  V0.S4, V30.S4, V4.S4
	VST1.P [V4.S4], 16(R1)
	SUBS   $1, R3, R3
	BNE    axpy4loop

axpytail:
	AND $3, R2, R3
	CBZ R3, axpydone

axpy1:
	FMOVS.P 4(R0), F0
	FMOVS   (R1), F1
	FMADDS  F0, F1, F31, F1 // F1 += a*F0, one rounding as FMLA
	FMOVS.P F1, 4(R1)
	SUBS    $1, R3, R3
	BNE     axpy1

axpydone:
	RET

// func scaleMulNEON(out, w, x []float32, s float32)
TEXT ·scaleMulNEON(SB), NOSPLIT, $0-76
	MOVD  out_base+0(FP), R0
	MOVD  out_len+8(FP), R2
	MOVD  w_base+24(FP), R1
	MOVD  x_base+48(FP), R4
	FMOVS s+72(FP), F31
	VDUP  V31.S[0], V30.S4
	LSR   $3, R2, R3
	CBZ   R3, sm4

sm8:
	VLD1.P 32(R4), [V0.S4, V1.S4]
	VLD1.P 32(R1), [V2.S4, V3.S4]
	FMUL4S(30, 0, 0) // s*x
	FMUL4S(30, 1, 1)
	FMUL4S(0, 2, 2)  // w*(s*x)
	FMUL4S(1, 3, 3)
	VST1.P [V2.S4, V3.S4], 32(R0)
	SUBS   $1, R3, R3
	BNE    sm8

sm4:
	TBZ    $2, R2, smtail
	VLD1.P 16(R4), [V0.S4]
	VLD1.P 16(R1), [V2.S4]
	FMUL4S(30, 0, 0)
	FMUL4S(0, 2, 2)
	VST1.P [V2.S4], 16(R0)

smtail:
	AND $3, R2, R3
	CBZ R3, smdone

sm1:
	FMOVS.P 4(R4), F0
	FMOVS.P 4(R1), F2
	FMULS   F31, F0, F0
	FMULS   F0, F2, F2
	FMOVS.P F2, 4(R0)
	SUBS    $1, R3, R3
	BNE     sm1

smdone:
	RET

// func matVec4NEON(out, w, x []float32, stride int)
//
// For each block of 4 rows (stride floats apart): 16 accumulators (4 a row)
// over the columns in passes of 16, then passes of 4; the last n%4 columns
// are left to the Go driver. x (in V16-V19) is shared by the four rows, whose loads alternate
// between V20-V23 and V24-V27 so that loads run ahead of the FMLAs.
TEXT ·matVec4NEON(SB), NOSPLIT, $0-80
	MOVD out_base+0(FP), R0
	MOVD out_len+8(FP), R4
	MOVD w_base+24(FP), R1
	MOVD x_base+48(FP), R2
	MOVD x_len+56(FP), R3
	MOVD stride+72(FP), R10
	LSR  $2, R4, R4         // blocks of 4 rows
	CBZ  R4, mvdone
	LSL  $2, R10, R10       // row stride in bytes
	LSR  $4, R3, R11        // passes of 16
	AND  $15, R3, R12
	LSR  $2, R12, R12       // passes of 4

mvblock:
	ADD  R10, R1, R5
	ADD  R10, R5, R6
	ADD  R10, R6, R7
	MOVD R2, R8
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16
	MOVD R1, R13            // the block's first row, for the next block
	MOVD R11, R9
	CBZ  R9, mv4

mv16:
	VLD1.P 64(R8), [V16.S4, V17.S4, V18.S4, V19.S4]
	VLD1.P 64(R1), [V20.S4, V21.S4, V22.S4, V23.S4]
	VLD1.P 64(R5), [V24.S4, V25.S4, V26.S4, V27.S4]
	// The hardware prefetchers follow four sequential streams, but a
	// hint 128 bytes ahead covers the first lines of each row.
	PRFM   128(R1), PLDL1KEEP
	PRFM   128(R5), PLDL1KEEP
	VFMLA  V20.S4, V16.S4, V0.S4
	VFMLA  V21.S4, V17.S4, V1.S4
	VFMLA  V22.S4, V18.S4, V2.S4
	VFMLA  V23.S4, V19.S4, V3.S4
	VLD1.P 64(R6), [V20.S4, V21.S4, V22.S4, V23.S4]
	VFMLA  V24.S4, V16.S4, V4.S4
	VFMLA  V25.S4, V17.S4, V5.S4
	VFMLA  V26.S4, V18.S4, V6.S4
	VFMLA  V27.S4, V19.S4, V7.S4
	VLD1.P 64(R7), [V24.S4, V25.S4, V26.S4, V27.S4]
	PRFM   128(R6), PLDL1KEEP
	PRFM   128(R7), PLDL1KEEP
	VFMLA  V20.S4, V16.S4, V8.S4
	VFMLA  V21.S4, V17.S4, V9.S4
	VFMLA  V22.S4, V18.S4, V10.S4
	VFMLA  V23.S4, V19.S4, V11.S4
	VFMLA  V24.S4, V16.S4, V12.S4
	VFMLA  V25.S4, V17.S4, V13.S4
	VFMLA  V26.S4, V18.S4, V14.S4
	VFMLA  V27.S4, V19.S4, V15.S4
	SUBS   $1, R9, R9
	BNE    mv16

mv4:
	MOVD R12, R9
	CBZ  R9, mvsum

mv4loop:
	VLD1.P 16(R8), [V16.S4]
	VLD1.P 16(R1), [V20.S4]
	VLD1.P 16(R5), [V21.S4]
	VLD1.P 16(R6), [V22.S4]
	VLD1.P 16(R7), [V23.S4]
	VFMLA  V20.S4, V16.S4, V0.S4
	VFMLA  V21.S4, V16.S4, V4.S4
	VFMLA  V22.S4, V16.S4, V8.S4
	VFMLA  V23.S4, V16.S4, V12.S4
	SUBS   $1, R9, R9
	BNE    mv4loop

mvsum:
	// Row k's sum is in V(4k)..V(4k+3): add them, then two rounds of
	// pairwise sums put the four rows' totals in the lanes of V0.
	FADD4S(1, 0, 0)
	FADD4S(3, 2, 2)
	FADD4S(2, 0, 0)
	FADD4S(5, 4, 4)
	FADD4S(7, 6, 6)
	FADD4S(6, 4, 4)
	FADD4S(9, 8, 8)
	FADD4S(11, 10, 10)
	FADD4S(10, 8, 8)
	FADD4S(13, 12, 12)
	FADD4S(15, 14, 14)
	FADD4S(14, 12, 12)
	FADDP4S(4, 0, 0)
	FADDP4S(12, 8, 8)
	FADDP4S(8, 0, 0)
	VST1.P [V0.S4], 16(R0)
	LSL    $2, R10, R14
	ADD    R14, R13, R1     // next block: 4 rows on
	SUBS   $1, R4, R4
	BNE    mvblock

mvdone:
	RET

// FMAX Vd.4S, Vn.4S, Vm.4S
#define FMAX4S(m, n, d) WORD $(0x4e20f400 | (m)<<16 | (n)<<5 | (d))
// FMAXV Sd, Vn.4S: the largest lane.
#define FMAXV4S(n, d) WORD $(0x6e30f800 | (n)<<5 | (d))
// FDIV Vd.4S, Vn.4S, Vm.4S: Vn / Vm, correctly rounded.
#define FDIV4S(m, n, d) WORD $(0x6e20fc00 | (m)<<16 | (n)<<5 | (d))

// func maxfNEON(x []float32) float32
TEXT ·maxfNEON(SB), NOSPLIT, $0-28
	MOVD  x_base+0(FP), R0
	MOVD  x_len+8(FP), R2
	MOVW  $0xff800000, R4   // -Inf
	FMOVS R4, F0
	VDUP  V0.S[0], V0.S4
	VMOV  V0.B16, V1.B16
	VMOV  V0.B16, V2.B16
	VMOV  V0.B16, V3.B16
	LSR   $4, R2, R3
	CBZ   R3, max4

max16:
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	FMAX4S(4, 0, 0)
	FMAX4S(5, 1, 1)
	FMAX4S(6, 2, 2)
	FMAX4S(7, 3, 3)
	SUBS   $1, R3, R3
	BNE    max16

max4:
	AND $15, R2, R3
	LSR $2, R3, R3
	CBZ R3, maxsum

max4loop:
	VLD1.P 16(R0), [V4.S4]
	FMAX4S(4, 0, 0)
	SUBS   $1, R3, R3
	BNE    max4loop

maxsum:
	FMAX4S(1, 0, 0)
	FMAX4S(3, 2, 2)
	FMAX4S(2, 0, 0)
	FMAXV4S(0, 0)
	AND    $3, R2, R3
	CBZ    R3, maxdone

max1:
	FMOVS.P 4(R0), F4
	FMAXS   F4, F0, F0
	SUBS    $1, R3, R3
	BNE     max1

maxdone:
	FMOVS F0, ret+24(FP)
	RET

// func divScalarNEON(x []float32, d float32)
TEXT ·divScalarNEON(SB), NOSPLIT, $0-28
	MOVD  x_base+0(FP), R0
	MOVD  x_len+8(FP), R2
	FMOVS d+24(FP), F31
	VDUP  V31.S[0], V30.S4
	LSR   $3, R2, R3
	CBZ   R3, div4

div8:
	VLD1   (R0), [V0.S4, V1.S4]
	FDIV4S(30, 0, 0)
	FDIV4S(30, 1, 1)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUBS   $1, R3, R3
	BNE    div8

div4:
	TBZ    $2, R2, divtail
	VLD1   (R0), [V0.S4]
	FDIV4S(30, 0, 0)
	VST1.P [V0.S4], 16(R0)

divtail:
	AND $3, R2, R3
	CBZ R3, divdone

div1:
	FMOVS   (R0), F0
	FDIVS   F31, F0, F0
	FMOVS.P F0, 4(R0)
	SUBS    $1, R3, R3
	BNE     div1

divdone:
	RET

// func matMat4x2NEON(out, w, x []float32, n, m, tiles int)
//
// Tiles of 4 rows of w by 2 vectors of x: each load of w serves both
// vectors, each load of x all four rows; 8 accumulators, 4 columns a pass.
// The last n%4 columns are left to the Go driver.
TEXT ·matMat4x2NEON(SB), NOSPLIT, $0-96
	MOVD out_base+0(FP), R0
	MOVD w_base+24(FP), R1
	MOVD x_base+48(FP), R2
	MOVD n+72(FP), R3
	MOVD m+80(FP), R4
	MOVD tiles+88(FP), R5
	CBZ  R5, mmdone
	LSL  $2, R3, R13        // n in bytes
	LSL  $2, R4, R14        // m in bytes
	LSR  $2, R3, R15        // passes of 4 columns

mmtile:
	MOVD R1, R7
	ADD  R13, R7, R8
	ADD  R13, R8, R9
	ADD  R13, R9, R10
	MOVD R2, R11
	ADD  R13, R11, R12
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	MOVD R15, R6
	CBZ  R6, mmsum

mmloop:
	VLD1.P 16(R11), [V16.S4]
	VLD1.P 16(R12), [V17.S4]
	VLD1.P 16(R7), [V20.S4]
	VLD1.P 16(R8), [V21.S4]
	VLD1.P 16(R9), [V22.S4]
	VLD1.P 16(R10), [V23.S4]
	VFMLA  V20.S4, V16.S4, V0.S4
	VFMLA  V20.S4, V17.S4, V1.S4
	VFMLA  V21.S4, V16.S4, V2.S4
	VFMLA  V21.S4, V17.S4, V3.S4
	VFMLA  V22.S4, V16.S4, V4.S4
	VFMLA  V22.S4, V17.S4, V5.S4
	VFMLA  V23.S4, V16.S4, V6.S4
	VFMLA  V23.S4, V17.S4, V7.S4
	SUBS   $1, R6, R6
	BNE    mmloop

mmsum:
	// Vector 0's rows are in V0, V2, V4, V6; vector 1's in V1, V3, V5, V7.
	FADDP4S(2, 0, 8)
	FADDP4S(6, 4, 9)
	FADDP4S(9, 8, 8)
	FADDP4S(3, 1, 10)
	FADDP4S(7, 5, 11)
	FADDP4S(11, 10, 10)
	VST1   [V8.S4], (R0)
	ADD    R14, R0, R0
	VST1   [V10.S4], (R0)
	ADD    R14, R0, R0
	ADD    R13<<1, R2, R2
	SUBS   $1, R5, R5
	BNE    mmtile

mmdone:
	RET
