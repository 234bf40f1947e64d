package kernels

import "math"

// A fast float32 exp, Cephes expf's algorithm, shared by the pure-Go kernels
// (exp32) and the assembly (asm/attn.go emits the same steps):
//
//  1. clamp x to [expLo, expHi]: below expLo exp(x) rounds to 0, above
//     expHi it overflows to +Inf; NaN passes through every step unchanged;
//  2. n = round(x*log2(e)), to nearest even, by adding and subtracting
//     1.5*2^23 (x*log2(e) is within ±151 after the clamp);
//  3. r = x - n*ln2, with ln2 split into ln2Hi (9 significant bits, so n*ln2Hi
//     and x - n*ln2Hi are exact) and ln2Lo: |r| <= ln2/2 + a little;
//  4. exp(r) = 1 + r + r*r*P(r), P a degree-5 minimax polynomial;
//  5. exp(x) = exp(r) * 2^n, as two exact-then-rounded multiplications by
//     2^(n>>1) and 2^(n-n>>1), so that the single rounding of the second one
//     produces correctly rounded denormals and overflow to +Inf
//     (VSCALEFPS computes the same product in one instruction).
//
// The error is at most 1 ulp from the correctly rounded exp (tested over the
// whole float32 range; see TestExpAccuracy). The assembly evaluates step 4
// with fused multiply-adds, the Go code with separate multiplies and adds
// (unless the compiler fuses them, as it does on arm64), so the two may differ
// in the last bit.
const (
	expHi     = 89.0 // exp(89) > MaxFloat32: +Inf
	expLo     = -104 // exp(-104) < 2^-150, half the smallest denormal: 0
	expLog2e  = 1.44269504088896341
	expMagic  = 12582912 // 1.5*2^23: x+magic-magic rounds x to an integer
	expMagicB = 0x4b400000
	expLn2Hi  = 0.693359375
	expLn2Lo  = -2.12194440e-4
	expP0     = 1.9875691500e-4
	expP1     = 1.3981999507e-3
	expP2     = 8.3334519073e-3
	expP3     = 4.1665795894e-2
	expP4     = 1.6666665459e-1
	expP5     = 5.0000001201e-1
)

// exp32 returns e**x in float32 with at most 1 ulp of error (see above).
func exp32(x float32) float32 {
	if x > expHi {
		x = expHi
	}
	if x < expLo {
		x = expLo
	}
	t := float32(x*expLog2e) + expMagic
	n := t - expMagic
	r := x - n*expLn2Hi
	r -= n * expLn2Lo
	p := float32(expP0)
	p = p*r + expP1
	p = p*r + expP2
	p = p*r + expP3
	p = p*r + expP4
	p = p*r + expP5
	y := p*(r*r) + r
	y += 1
	k := int32(math.Float32bits(t) - expMagicB)
	k1 := k >> 1
	y *= math.Float32frombits(uint32(k1+127) << 23)
	y *= math.Float32frombits(uint32(k-k1+127) << 23)
	return y
}

// expRef is the correctly rounded exp (float64 exp rounded to float32; wrong
// only in vanishingly rare double-rounding cases), for the reference loops.
func expRef(x float32) float32 { return float32(math.Exp(float64(x))) }
