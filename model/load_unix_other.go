//go:build unix && !linux

package model

// adviseHugePages does nothing: transparent huge pages are Linux's.
func adviseHugePages(data []byte) {}

// hugePageBytes is 0: there is no portable way to ask.
func hugePageBytes(data []byte) int64 { return 0 }

// memAvailable is -1 (unknown) outside Linux, so MmapAuto maps.
func memAvailable() int64 { return -1 }
