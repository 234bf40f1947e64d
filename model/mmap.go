package model

import (
	"fmt"
	"os"
)

// openForMapping opens path and returns it with its size, checked to fit in
// this address space; loadFile maps it or reads it. Anything but a regular
// file is refused here, so that the error is the same in both modes (mapping
// a directory fails with ENODEV, reading it with EISDIR).
func openForMapping(path string) (*os.File, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	size := fi.Size()
	if size != int64(int(size)) {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %d bytes do not fit in this address space", path, size)
	}
	return f, int(size), nil
}
