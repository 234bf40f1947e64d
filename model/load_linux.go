package model

import (
	"bufio"
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// adviseHugePages asks for transparent huge pages (needed when
// /sys/kernel/mm/transparent_hugepage/enabled is "madvise", the common
// default): a 2 MiB page needs one TLB entry where 4 KiB pages need 512,
// which matters most in a VM, where a TLB miss walks two page tables.
// Failure only costs speed.
func adviseHugePages(data []byte) { unix.Madvise(data, unix.MADV_HUGEPAGE) }

// hugePageBytes is how many bytes of data /proc/self/smaps says are backed
// by anonymous huge pages, or 0 when it cannot tell.
func hugePageBytes(data []byte) int64 {
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0
	}
	lo, hi := addrOf(data), addrOf(data)+uintptr(len(data))
	var total int64
	inside := false
	for line := range bytes.Lines(smaps) {
		if dash := bytes.IndexByte(line, '-'); dash > 0 && bytes.IndexByte(line[:dash], ':') < 0 {
			end := dash + 1 + bytes.IndexByte(line[dash+1:], ' ')
			start, err1 := strconv.ParseUint(string(line[:dash]), 16, 64)
			stop, err2 := strconv.ParseUint(string(line[dash+1:end]), 16, 64)
			inside = err1 == nil && err2 == nil && uintptr(start) < hi && lo < uintptr(stop)
			continue
		}
		if inside && bytes.HasPrefix(line, []byte("AnonHugePages:")) {
			f := bytes.Fields(line)
			if kb, err := strconv.ParseInt(string(f[1]), 10, 64); err == nil {
				total += kb << 10
			}
		}
	}
	return total
}

// memAvailable is MemAvailable from /proc/meminfo in bytes, the kernel's
// estimate of what can be allocated without swapping (page cache counts as
// available), or -1 when it cannot be read.
func memAvailable() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := bytes.Fields(s.Bytes())
		if len(fields) >= 2 && string(fields[0]) == "MemAvailable:" {
			if kb, err := strconv.ParseInt(string(fields[1]), 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return -1
}
