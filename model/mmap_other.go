//go:build !unix && !windows

package model

import (
	"os"
	"unsafe"
)

// mapFile reads the whole file on platforms without mmap support. The buffer
// is allocated as []float32 so the weight views are 4-byte aligned.
func mapFile(path string) (data []byte, unmap func() error, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	aligned := make([]float32, (len(raw)+3)/4)
	data = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(aligned))), len(raw))
	copy(data, raw)
	return data, func() error { return nil }, nil
}
