//go:build arm64 && !purego

#include "textflag.h"

// NEON kernels with exp: exp.go's algorithm step by step on 4 lanes, with
// fused multiply-adds where Go fuses exp32's expressions on arm64, so the
// result is exp32's. kernels_exp_arm64.go declares them. WORD macros as in
// kernels_arm64.s (operands are register numbers).

// FADD Vd.4S, Vn.4S, Vm.4S
#define FADD4S(m, n, d) WORD $(0x4e20d400 | (m)<<16 | (n)<<5 | (d))
// FSUB Vd.4S, Vn.4S, Vm.4S: Vn - Vm.
#define FSUB4S(m, n, d) WORD $(0x4ea0d400 | (m)<<16 | (n)<<5 | (d))
// FMUL Vd.4S, Vn.4S, Vm.4S
#define FMUL4S(m, n, d) WORD $(0x6e20dc00 | (m)<<16 | (n)<<5 | (d))
// FDIV Vd.4S, Vn.4S, Vm.4S: Vn / Vm.
#define FDIV4S(m, n, d) WORD $(0x6e20fc00 | (m)<<16 | (n)<<5 | (d))
// FMIN Vd.4S, Vn.4S, Vm.4S (NaN in, NaN out)
#define FMIN4S(m, n, d) WORD $(0x4ea0f400 | (m)<<16 | (n)<<5 | (d))
// FMAX Vd.4S, Vn.4S, Vm.4S (NaN in, NaN out)
#define FMAX4S(m, n, d) WORD $(0x4e20f400 | (m)<<16 | (n)<<5 | (d))
// FNEG Vd.4S, Vn.4S
#define FNEG4S(n, d) WORD $(0x6ea0f800 | (n)<<5 | (d))
// SUB Vd.4S, Vn.4S, Vm.4S (int32): Vn - Vm.
#define SUB4S(m, n, d) WORD $(0x6ea08400 | (m)<<16 | (n)<<5 | (d))
// SSHR Vd.4S, Vn.4S, #1 (arithmetic shift right by one)
#define SSHR4S1(n, d) WORD $(0x4f3f0400 | (n)<<5 | (d))
// FADDP Vd.4S, Vn.4S, Vm.4S
#define FADDP4S(m, n, d) WORD $(0x6e20d400 | (m)<<16 | (n)<<5 | (d))
// FADDP Sd, Vn.2S
#define FADDP2S(n, d) WORD $(0x7e30d800 | (n)<<5 | (d))

// Constants in V16-V29 (exp.go's names; float32 bits).
#define EXP_CONSTANTS \
	MOVW $0x42b20000, R9; VDUP R9, V16.S4 \ // expHi
	MOVW $0xc2d00000, R9; VDUP R9, V17.S4 \ // expLo
	MOVW $0x3fb8aa3b, R9; VDUP R9, V18.S4 \ // expLog2e
	MOVW $0x4b400000, R9; VDUP R9, V19.S4 \ // expMagic (its bits are expMagicB)
	MOVW $0x3f318000, R9; VDUP R9, V20.S4 \ // expLn2Hi
	MOVW $0xb95e8083, R9; VDUP R9, V21.S4 \ // expLn2Lo
	MOVW $0x39506967, R9; VDUP R9, V22.S4 \ // expP0
	MOVW $0x3ab743ce, R9; VDUP R9, V23.S4 \ // expP1
	MOVW $0x3c088908, R9; VDUP R9, V24.S4 \ // expP2
	MOVW $0x3d2aa9c1, R9; VDUP R9, V25.S4 \ // expP3
	MOVW $0x3e2aaaaa, R9; VDUP R9, V26.S4 \ // expP4
	MOVW $0x3f000000, R9; VDUP R9, V27.S4 \ // expP5
	MOVW $0x3f800000, R9; VDUP R9, V28.S4 \ // 1
	MOVW $127, R9; VDUP R9, V29.S4          // exponent bias

// V0 = exp32(V0); clobbers V1-V6.
#define EXP4 \
	FMIN4S(16, 0, 0)                \ // clamp
	FMAX4S(17, 0, 0)                \
	FMUL4S(18, 0, 1)                \ // t = float32(x*log2e) + magic
	FADD4S(19, 1, 1)                \
	FSUB4S(19, 1, 2)                \ // n = t - magic
	VMOV   V0.B16, V3.B16           \ // r = x - n*ln2Hi; r -= n*ln2Lo
	VFMLS  V20.S4, V2.S4, V3.S4     \
	VFMLS  V21.S4, V2.S4, V3.S4     \
	VMOV   V23.B16, V4.B16          \ // p = P0*r + P1, ...
	VFMLA  V22.S4, V3.S4, V4.S4     \
	VMOV   V24.B16, V5.B16          \
	VFMLA  V4.S4, V3.S4, V5.S4      \
	VMOV   V25.B16, V4.B16          \
	VFMLA  V5.S4, V3.S4, V4.S4      \
	VMOV   V26.B16, V5.B16          \
	VFMLA  V4.S4, V3.S4, V5.S4      \
	VMOV   V27.B16, V4.B16          \
	VFMLA  V5.S4, V3.S4, V4.S4      \
	FMUL4S(3, 3, 5)                 \ // y = p*(r*r) + r
	VMOV   V3.B16, V6.B16           \
	VFMLA  V4.S4, V5.S4, V6.S4      \
	FADD4S(28, 6, 6)                \ // y += 1
	SUB4S(19, 1, 1)                 \ // k = bits(t) - magicB
	SSHR4S1(1, 2)                   \ // k1 = k >> 1
	SUB4S(2, 1, 1)                  \ // k - k1
	VADD   V29.S4, V2.S4, V2.S4     \
	VSHL   $23, V2.S4, V2.S4        \ // 2^k1
	VADD   V29.S4, V1.S4, V1.S4     \
	VSHL   $23, V1.S4, V1.S4        \ // 2^(k-k1)
	FMUL4S(2, 6, 6)                 \
	FMUL4S(1, 6, 0)

// func expSubSum4NEON(x []float32, m float32) float32
TEXT ·expSubSum4NEON(SB), NOSPLIT, $0-36
	MOVD  x_base+0(FP), R0
	MOVD  x_len+8(FP), R2
	FMOVS m+24(FP), F31
	VDUP  V31.S[0], V31.S4
	EXP_CONSTANTS
	VEOR  V30.B16, V30.B16, V30.B16
	LSR   $2, R2, R3
	CBZ   R3, esdone

esloop:
	VLD1   (R0), [V0.S4]
	FSUB4S(31, 0, 0)
	EXP4
	VST1.P [V0.S4], 16(R0)
	FADD4S(0, 30, 30)
	SUBS   $1, R3, R3
	BNE    esloop

esdone:
	FADDP4S(30, 30, 30)
	FADDP2S(30, 30)
	FMOVS F30, ret+32(FP)
	RET

// func siluMul4NEON(hb, hb2 []float32)
TEXT ·siluMul4NEON(SB), NOSPLIT, $0-48
	MOVD hb_base+0(FP), R0
	MOVD hb_len+8(FP), R2
	MOVD hb2_base+24(FP), R1
	EXP_CONSTANTS
	LSR  $2, R2, R3
	CBZ  R3, sidone

siloop:
	VLD1   (R0), [V7.S4]
	FNEG4S(7, 0)
	EXP4
	FADD4S(28, 0, 0)   // 1 + exp(-v)
	FDIV4S(0, 28, 0)   // 1 / (1 + exp(-v))
	FMUL4S(0, 7, 7)    // v *= ...
	VLD1.P 16(R1), [V8.S4]
	FMUL4S(8, 7, 7)    // v * hb2[i]
	VST1.P [V7.S4], 16(R0)
	SUBS   $1, R3, R3
	BNE    siloop

sidone:
	RET
