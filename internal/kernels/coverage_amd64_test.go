//go:build amd64 && !purego

package kernels

const goarch = "amd64"

// archImpls lists the amd64 assembly implementations (cpu.go's flags).
func archImpls() []archImpl {
	return []archImpl{
		{"f32", "avx512", hasAVX512, "AVX-512"},
		{"f32", "avx2", hasAVX2FMA, "AVX2+FMA"},
		{"q8", "vnni", hasVNNI, "AVX-512 VNNI"},
		{"q8", "avx2", hasAVX2FMA, "AVX2+FMA"},
		{"gguf", "avx512", hasVNNI && hasVBMI, "AVX-512 VNNI+VBMI"},
		{"gguf", "avx2", hasAVX2FMA, "AVX2+FMA"},
		{"kquant", "vnni", hasVNNI, "AVX-512 VNNI"},
		{"kquant", "avx2", hasAVX2FMA, "AVX2+FMA"},
		{"quantize", "avx512", hasAVX512, "AVX-512"},
		{"quantize", "avx2", hasAVX2FMA, "AVX2+FMA"},
		{"resident", "vnni", hasVNNI, "AVX-512 VNNI"},
	}
}
