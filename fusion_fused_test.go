//go:build !amd64 || amd64.v3

package main

// goFusesMulAdd: see fusion_exact_test.go.
const goFusesMulAdd = true
