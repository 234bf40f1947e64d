//go:build windows

package model

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// mapFile maps path read-only through a file mapping object, so every
// process that opens the same checkpoint shares its pages.
func mapFile(path string) (data []byte, unmap func() error, err error) {
	f, size, err := openForMapping(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if size == 0 {
		return []byte{}, func() error { return nil }, nil
	}
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
