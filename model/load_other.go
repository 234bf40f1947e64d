//go:build !unix

package model

import (
	"errors"
	"unsafe"
)

// allocAnon returns size bytes of the Go heap: the plain fallback where
// anonymous mappings are not wired up. The buffer is allocated as []float32
// so that weight views are 4-byte aligned, and holds no pointers, so the
// garbage collector never scans it.
func allocAnon(size int) (data []byte, free func() error, kind string, err error) {
	aligned := make([]float32, (size+3)/4)
	data = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(aligned))), size)
	return data, func() error { return nil }, memRead, nil
}

// protectReadOnly does nothing: the Go heap cannot be protected.
func protectReadOnly(data []byte) error { return nil }

// protectReadWrite does nothing: see protectReadOnly.
func protectReadWrite(data []byte) error { return nil }

// hugePageBytes is 0: there is no way to ask.
func hugePageBytes(data []byte) int64 { return 0 }

// lockMemory is not wired up outside unix.
func lockMemory(data []byte) error { return errors.ErrUnsupported }

// memAvailable is -1 (unknown), so MmapAuto maps.
func memAvailable() int64 { return -1 }
