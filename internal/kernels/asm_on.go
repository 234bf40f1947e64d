//go:build (amd64 || arm64) && !purego

package kernels

// asmKernels: this build runs the assembly kernels (Features).
const asmKernels = true
