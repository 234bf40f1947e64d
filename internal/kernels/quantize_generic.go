//go:build !amd64 || purego

package kernels

// Without the AVX-512 quantizer, quantizeGroups is its pure-Go twin.

func quantizeGroupsImpl(q []int8, s []float32, sums []int32, x []float32, gs int) bool {
	return quantizeGroupsGo(q, s, sums, x, gs)
}

func archQuantizeImpls() []quantizeImpl { return nil }
