//go:build amd64 && !amd64.v3

package main

// goFusesMulAdd reports whether the compiler may fuse x*y + z into one
// rounding: gc does on arm64, ppc64, s390x, riscv64 and loong64, and on
// amd64 only from GOAMD64=v3. Here it never does, and llama2.c's outputs
// are reproduced byte for byte (the Q8_0 golden included).
const goFusesMulAdd = false
