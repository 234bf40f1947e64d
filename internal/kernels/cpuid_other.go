//go:build !amd64 || purego

package kernels

// identifyCPU: no CPUID here; the per-CPU table's default row applies.
func identifyCPU() (vendor string, family, model int) { return "", 0, 0 }
