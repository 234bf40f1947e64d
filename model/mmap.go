package model

import (
	"fmt"
	"os"
)

// openForMapping opens path and returns it with its size, checked to fit in
// this address space; mapFile (per OS) maps it.
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
	size := fi.Size()
	if size != int64(int(size)) {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %d bytes do not fit in this address space", path, size)
	}
	return f, int(size), nil
}
