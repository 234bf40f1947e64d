//go:build amd64 && !amd64.v3

package model

// goFusesMulAdd reports whether the compiler may fuse x*y + z into one
// fused multiply-add (one rounding instead of two) in plain Go code of this
// package. The Go spec allows it; gc does it on arm64, ppc64, s390x,
// riscv64 and loong64, and on amd64 only from GOAMD64=v3, where FMA is
// guaranteed. Here (amd64 below v3) it never does, so two Go loops that
// perform the same float32 operations in the same order give the same bits,
// and tests that rely on that compare with ==.
const goFusesMulAdd = false
