//go:build unix

package model

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// mapFile maps path read-only and shared, so every process that opens the
// same checkpoint shares its pages, and opening costs no copy.
func mapFile(path string) (data []byte, unmap func() error, err error) {
	f, size, err := openForMapping(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if size == 0 {
		return []byte{}, func() error { return nil }, nil
	}
	data, err = unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return data, func() error { return unix.Munmap(data) }, nil
}
