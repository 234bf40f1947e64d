//go:build !amd64 || purego

package kernels

import "testing"

// requireGenerated: no assembly variants to pick from in this build.
func requireGenerated(*testing.T, Tuning) {}
