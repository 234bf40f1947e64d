//go:build !unix && !windows

package model

import (
	"errors"
	"os"
)

// canMmap: without mmap, MmapOn reads the file too.
const canMmap = false

func mapOpened(f *os.File, size int, path string) ([]byte, func() error, error) {
	return nil, nil, errors.ErrUnsupported
}
