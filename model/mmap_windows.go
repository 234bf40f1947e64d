//go:build windows

package model

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// canMmap: MmapOn maps the file here.
const canMmap = true

// mapOpened maps the open file f of size bytes read-only through a file
// mapping object, so every process that opens the same checkpoint shares its
// pages.
func mapOpened(f *os.File, size int, path string) (data []byte, unmap func() error, err error) {
	h, err := windows.CreateFileMapping(windows.Handle(f.Fd()), nil, windows.PAGE_READONLY,
		uint32(int64(size)>>32), uint32(size), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("CreateFileMapping %s: %w", path, err)
	}
	addr, err := windows.MapViewOfFile(h, windows.FILE_MAP_READ, 0, 0, uintptr(size))
	windows.CloseHandle(h) // the view keeps the mapping alive
	if err != nil {
		return nil, nil, fmt.Errorf("MapViewOfFile %s: %w", path, err)
	}
	data = unsafe.Slice((*byte)(unsafe.Pointer(addr)), size)
	return data, func() error { return windows.UnmapViewOfFile(addr) }, nil
}
