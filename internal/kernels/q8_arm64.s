//go:build arm64 && !purego

#include "textflag.h"

// NEON Q8_0 kernels; kernels_q8_arm64.go declares them and shows the loop
// they compute. The instructions Go's assembler lacks are WORDs (see
// kernels_arm64.s): operands are register numbers, fields Rm<<16|Rn<<5|Rd.

// FADD Vd.4S, Vn.4S, Vm.4S
#define FADD4S(m, n, d) WORD $(0x4e20d400 | (m)<<16 | (n)<<5 | (d))
// FMUL Vd.4S, Vn.4S, Vm.4S
#define FMUL4S(m, n, d) WORD $(0x6e20dc00 | (m)<<16 | (n)<<5 | (d))
// ADDP Vd.4S, Vn.4S, Vm.4S: pairwise int32 sums, Vn's pairs in the low half.
#define ADDP4S(m, n, d) WORD $(0x4ea0bc00 | (m)<<16 | (n)<<5 | (d))
// SCVTF Vd.4S, Vn.4S: int32 to float32, rounding to nearest even.
#define SCVTF4S(n, d) WORD $(0x4e21d800 | (n)<<5 | (d))
// SDOT Vd.4S, Vn.16B, Vm.16B (ARMv8.2 FEAT_DotProd)
#define SDOT16B(m, n, d) WORD $(0x4e809400 | (m)<<16 | (n)<<5 | (d))
// SMULL Vd.8H, Vn.8B, Vm.8B: products of the low 8 bytes, as int16.
#define SMULL8B(m, n, d) WORD $(0x0e20c000 | (m)<<16 | (n)<<5 | (d))
// SMULL2 Vd.8H, Vn.16B, Vm.16B: products of the high 8 bytes, as int16.
#define SMULL216B(m, n, d) WORD $(0x4e20c000 | (m)<<16 | (n)<<5 | (d))
// SADALP Vd.4S, Vn.8H: Vd.S[i] += Vn.H[2i] + Vn.H[2i+1].
#define SADALP8H(n, d) WORD $(0x4e606800 | (n)<<5 | (d))

// Register use, both kernels:
//	R0 out, R1 w (first row of the block), R2 ws (its first row's scales),
//	R3 x, R4 xs, R5 gs/16, R6 ng, R7 blocks of 4 rows left, R8 n,
//	R9-R12 the block's four rows, R13-R16 their scales, R17 x cursor,
//	R19 xs cursor, R20 groups left, R21 16-byte steps left in the group;
//	V0-V3 the rows' int32 sums in a group, V16 x, V20-V23 w, V28 totals.

// Sets up a block of 4 rows: row and scale pointers, totals to zero.
#define BLOCK_START \
	MOVD R1, R9                     \
	ADD  R8, R9, R10                \
	ADD  R8, R10, R11               \
	ADD  R8, R11, R12               \
	MOVD R2, R13                    \
	ADD  R6<<2, R13, R14            \
	ADD  R6<<2, R14, R15            \
	ADD  R6<<2, R15, R16            \
	MOVD R3, R17                    \
	MOVD R4, R19                    \
	MOVD R6, R20                    \
	VEOR V28.B16, V28.B16, V28.B16

#define GROUP_START \
	VEOR V0.B16, V0.B16, V0.B16 \
	VEOR V1.B16, V1.B16, V1.B16 \
	VEOR V2.B16, V2.B16, V2.B16 \
	VEOR V3.B16, V3.B16, V3.B16 \
	MOVD R5, R21

// Ends a group: the rows' sums into the lanes of V0, then, in float32,
// total += float(sum) * ws[row][g] * xs[g], rounding after each step.
#define GROUP_END \
	ADDP4S(1, 0, 0)                \
	ADDP4S(3, 2, 2)                \
	ADDP4S(2, 0, 0)                \
	SCVTF4S(0, 0)                  \
	VLD1.P 4(R13), V4.S[0]         \
	VLD1.P 4(R14), V4.S[1]         \
	VLD1.P 4(R15), V4.S[2]         \
	VLD1.P 4(R16), V4.S[3]         \
	VLD1R.P 4(R19), [V5.S4]        \
	FMUL4S(4, 0, 0)                \
	FMUL4S(5, 0, 0)                \
	FADD4S(0, 28, 28)

// Ends a block: store the four totals; the row and scale pointers of the
// last row have reached the next block's.
#define BLOCK_END \
	VST1.P [V28.S4], 16(R0) \
	MOVD   R12, R1          \
	MOVD   R16, R2

#define LOAD_ARGS \
	MOVD out_base+0(FP), R0 \
	MOVD out_len+8(FP), R7  \
	MOVD w_base+24(FP), R1  \
	MOVD ws_base+48(FP), R2 \
	MOVD x_base+72(FP), R3  \
	MOVD x_len+80(FP), R8   \
	MOVD xs_base+96(FP), R4 \
	MOVD xs_len+104(FP), R6 \
	MOVD gs+120(FP), R5     \
	LSR  $4, R5, R5         \
	LSR  $2, R7, R7

// func matVecQ8x4SDOT(out []float32, w []int8, ws []float32, x []int8, xs []float32, gs int)
TEXT ·matVecQ8x4SDOT(SB), NOSPLIT, $0-128
	LOAD_ARGS
	CBZ R7, sdotdone

sdotblock:
	BLOCK_START

sdotgroup:
	GROUP_START

sdotstep:
	VLD1.P 16(R17), [V16.B16]
	VLD1.P 16(R9), [V20.B16]
	VLD1.P 16(R10), [V21.B16]
	VLD1.P 16(R11), [V22.B16]
	VLD1.P 16(R12), [V23.B16]
	PRFM   128(R9), PLDL1KEEP
	PRFM   128(R10), PLDL1KEEP
	PRFM   128(R11), PLDL1KEEP
	PRFM   128(R12), PLDL1KEEP
	SDOT16B(16, 20, 0)
	SDOT16B(16, 21, 1)
	SDOT16B(16, 22, 2)
	SDOT16B(16, 23, 3)
	SUBS   $1, R21, R21
	BNE    sdotstep

	GROUP_END
	SUBS $1, R20, R20
	BNE  sdotgroup

	BLOCK_END
	SUBS $1, R7, R7
	BNE  sdotblock

sdotdone:
	RET

// func matVecQ8x4NEON(out []float32, w []int8, ws []float32, x []int8, xs []float32, gs int)
TEXT ·matVecQ8x4NEON(SB), NOSPLIT, $0-128
	LOAD_ARGS
	CBZ R7, neondone

neonblock:
	BLOCK_START

neongroup:
	GROUP_START

neonstep:
	VLD1.P 16(R17), [V16.B16]
	VLD1.P 16(R9), [V20.B16]
	VLD1.P 16(R10), [V21.B16]
	VLD1.P 16(R11), [V22.B16]
	VLD1.P 16(R12), [V23.B16]
	PRFM   128(R9), PLDL1KEEP
	PRFM   128(R10), PLDL1KEEP
	PRFM   128(R11), PLDL1KEEP
	PRFM   128(R12), PLDL1KEEP
	// |w*x| <= 128*128 fits int16; SADALP adds pairs into int32.
	SMULL8B(16, 20, 24)
	SMULL216B(16, 20, 25)
	SMULL8B(16, 21, 26)
	SMULL216B(16, 21, 27)
	SADALP8H(24, 0)
	SADALP8H(25, 0)
	SADALP8H(26, 1)
	SADALP8H(27, 1)
	SMULL8B(16, 22, 24)
	SMULL216B(16, 22, 25)
	SMULL8B(16, 23, 26)
	SMULL216B(16, 23, 27)
	SADALP8H(24, 2)
	SADALP8H(25, 2)
	SADALP8H(26, 3)
	SADALP8H(27, 3)
	SUBS   $1, R21, R21
	BNE    neonstep

	GROUP_END
	SUBS $1, R20, R20
	BNE  neongroup

	BLOCK_END
	SUBS $1, R7, R7
	BNE  neonblock

neondone:
	RET
