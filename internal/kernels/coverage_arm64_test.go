//go:build arm64 && !purego

package kernels

const goarch = "arm64"

// archImpls lists the arm64 assembly implementations (cpu.go's flags):
// the float32 and llama2.c Q8_0 kernels; GGUF's run their Go twins.
func archImpls() []archImpl {
	return []archImpl{
		{"f32", "neon", hasNEON, "NEON"},
		{"q8", "sdot", hasASIMDDP, "ASIMD dot product"},
		{"q8", "neon", hasNEON, "NEON"},
	}
}
