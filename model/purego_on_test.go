//go:build purego

package model

// puregoBuild thins the slowest sweeps under -tags purego, whose kernels
// (the Go twins) are many times slower than the assembly the plain and
// -race runs test in full.
const puregoBuild = true
