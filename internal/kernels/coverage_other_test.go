//go:build !(amd64 || arm64) || purego

package kernels

import "runtime"

var goarch = runtime.GOARCH

// archImpls: this build has no assembly.
func archImpls() []archImpl { return nil }
