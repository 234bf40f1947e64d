//go:build !amd64 || purego

package kernels

// Without assembly the KV cache's widening is the Go twins' (kvcache.go).

func dequantRowsF16Impl(dst []float32, src []uint16, rows, cols, stride int) {
	dequantRowsF16Go(dst, src, rows, cols, stride)
}

func dequantRowsQ8_0Impl(dst []float32, src []byte, rows, nb, stride int) {
	dequantRowsQ8_0Go(dst, src, rows, nb, stride)
}

func archKVImpls() []kvImpl {
	return nil
}
