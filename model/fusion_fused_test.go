//go:build !amd64 || amd64.v3

package model

// goFusesMulAdd: see fusion_exact_test.go. Here the compiler may fuse
// x*y + z wherever it likes, and it chooses per expression, so two Go code
// paths that do the same arithmetic written differently (the batched and the
// one-token forward pass) may round differently.
const goFusesMulAdd = true
