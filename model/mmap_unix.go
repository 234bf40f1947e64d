//go:build unix

package model

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// canMmap: MmapOn maps the file here.
const canMmap = true

// mapOpened maps the open file f of size bytes read-only and shared, so
// every process that opens the same checkpoint shares its pages, and opening
// costs no copy.
func mapOpened(f *os.File, size int, path string) (data []byte, unmap func() error, err error) {
	data, err = unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return data, func() error { return unix.Munmap(data) }, nil
}

// hugePage is the size of a transparent huge page on amd64 and arm64 Linux.
const hugePage = 2 << 20

// allocAnon returns size bytes of private anonymous memory, aligned to a
// huge page and advised to use them (Linux) before anything touches it.
func allocAnon(size int) (data []byte, free func() error, kind string, err error) {
	whole, err := unix.Mmap(-1, 0, size+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil, nil, "", err
	}
	skip := 0
	if rem := addrOf(whole) % hugePage; rem != 0 {
		skip = int(hugePage - rem)
	}
	data = whole[skip : skip+size : skip+size]
	adviseHugePages(data)
	return data, func() error { return unix.Munmap(whole) }, memAnon, nil
}

// protectReadOnly makes data read-only, as a mapping of the file is, so a
// stray write to a weight faults instead of corrupting it.
func protectReadOnly(data []byte) error { return unix.Mprotect(data, unix.PROT_READ) }

// protectReadWrite makes data writable again.
func protectReadWrite(data []byte) error {
	return unix.Mprotect(data, unix.PROT_READ|unix.PROT_WRITE)
}

// lockMemory pins data in RAM.
func lockMemory(data []byte) error { return unix.Mlock(data) }
