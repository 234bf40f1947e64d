//go:build !(amd64 || arm64) || purego

package kernels

// asmKernels: this build runs the pure-Go twins only (Features).
const asmKernels = false
