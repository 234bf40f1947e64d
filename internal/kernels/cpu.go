package kernels

import (
	"runtime"

	"golang.org/x/sys/cpu"
)

// CPU features, detected once. This is the only place the package asks about
// the processor; kernels and tests read these flags. cpu.X86 also checks that
// the operating system saves the wider registers (XCR0), so a flag is only
// set when the instructions are actually usable. On other architectures
// their flags are false.
var (
	// hasAVX2FMA: 256-bit AVX2 with fused multiply-add (Haswell, Zen 1 and later).
	hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

	// hasAVX512: the AVX-512 subsets the kernels use: F (zmm, opmasks), plus
	// VL, BW and DQ, which every AVX-512 CPU since Skylake-SP has; VL lets
	// EVEX-encoded xmm/ymm instructions reach registers 16-31.
	hasAVX512 = hasAVX2FMA && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL &&
		cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ

	// hasVNNI: AVX-512 VNNI (VPDPBUSD), for int8 quantized dot products.
	hasVNNI = hasAVX512 && cpu.X86.HasAVX512VNNI

	// hasVBMI: AVX-512 VBMI (VPERMB), for unpacking Q4_0's nibbles.
	hasVBMI = hasAVX512 && cpu.X86.HasAVX512VBMI
)

// arm64.
var (
	// hasNEON: Advanced SIMD (ASIMD) with 32 128-bit registers and vector
	// fused multiply-add. ARMv8-A makes it mandatory, so every arm64 CPU Go
	// runs on has it (cpu.ARM64.HasASIMD is true there too, where the OS
	// reports it).
	hasNEON = runtime.GOARCH == "arm64"

	// hasASIMDDP: the dot-product instructions (SDOT), for int8 quantized
	// dot products: ARMv8.2 and later (Cortex-A76/Neoverse N1, Apple M1,
	// Graviton 2 and later), optional before ARMv8.4.
	hasASIMDDP = hasNEON && cpu.ARM64.HasASIMDDP
)

// The processor's vendor ("AuthenticAMD", "GenuineIntel"), family and model
// as CPUID gives them (and Linux's /proc/cpuinfo shows them), which pick
// the row of the per-CPU table (tuning.go); "", 0, 0 where CPUID is not
// read (other architectures, -tags purego).
var cpuVendor, cpuFamily, cpuModel = identifyCPU()

// decodeFamilyModel returns the family and model encoded in EAX of CPUID
// leaf 1: the extended family is added when the base family is 15, and the
// extended model is the high nibble when the family is 6 or 15 or more
// (Zen 4 EPYC: 0x00a10f11 is family 25, model 17).
func decodeFamilyModel(eax uint32) (family, model int) {
	family, model = int(eax>>8&0xf), int(eax>>4&0xf)
	if family == 0xf {
		family += int(eax >> 20 & 0xff)
	}
	if family == 6 || family >= 0xf {
		model += int(eax>>16&0xf) << 4
	}
	return family, model
}
