package model

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"unsafe"

	"github.com/llama2-go/llama2/gguf"
)

// OpenOptions choose where an opened model's weights live. The zero value is
// the default: see MmapAuto.
type OpenOptions struct {
	// Mmap chooses between mapping the file (MmapOn) and reading it into
	// anonymous memory (MmapOff). MmapAuto, the zero value, picks by free
	// memory (see autoMmap for the measurements behind it).
	Mmap MmapMode
	// Mlock locks the weights in RAM so that they are never paged out. It
	// fails with ErrMlock when the locked-memory limit (ulimit -l) is too low.
	Mlock bool
	// Progress, if not nil, is called as the file is read, each time with
	// more bytes done, and last with done == total (also when the file is
	// mapped, where nothing is read up front), so a progress display can
	// always finish. Calls never overlap.
	Progress func(done, total int64)
}

// MmapMode says whether weights are mapped from the file or read into memory.
// It is a flag.Value for a boolean flag: `-mmap`, `-mmap=true` (MmapOn),
// `-mmap=false` (MmapOff) or `-mmap=auto`.
type MmapMode int8

const (
	// MmapAuto reads the file into anonymous memory when it fits with room
	// to spare, and maps it otherwise (see autoMmap).
	MmapAuto MmapMode = iota
	// MmapOn maps the file read-only and shared: opening is instant, pages
	// are shared by every process that maps the file, and the page cache
	// holds the only copy.
	MmapOn
	// MmapOff reads the file into private anonymous memory (backed by huge
	// pages where the OS allows): opening costs one read of the file, and
	// generation streams the weights faster (see autoMmap). On CPUs with
	// AVX-512 VNNI, Q8_0 and Q4_0 matrices are then repacked once into the
	// layout of the int8 kernels (resident.go; Model.Format says so).
	MmapOff
)

// String is "auto", "true" or "false", the values Set accepts.
func (m MmapMode) String() string {
	switch m {
	case MmapOn:
		return "true"
	case MmapOff:
		return "false"
	}
	return "auto"
}

// Set parses "auto" or a boolean as strconv.ParseBool reads it.
func (m *MmapMode) Set(s string) error {
	if s == "auto" {
		*m = MmapAuto
		return nil
	}
	on, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q: want true, false or auto", s)
	}
	*m = MmapOff
	if on {
		*m = MmapOn
	}
	return nil
}

// IsBoolFlag lets a bare `-mmap` mean `-mmap=true`.
func (m *MmapMode) IsBoolFlag() bool { return true }

var (
	// ErrMlock is returned (wrapping the OS's reason) when OpenOptions.Mlock
	// is set and the weights cannot be locked in memory.
	ErrMlock = errors.New("cannot lock the weights in memory")
	// ErrNotEnoughMemory is returned when MmapOff is asked for a file larger
	// than the memory the OS reports available (MemAvailable on Linux).
	ErrNotEnoughMemory = errors.New("not enough memory available to read the weights into it")
)

// Where the weights of an opened file are, as WeightsMemory reports it.
const (
	memMapped    = "mmap"
	memAnon      = "anonymous"
	memAnonHuge  = "anonymous (huge pages)"
	memHeap      = "heap"
	memRead      = "heap (read)" // read into the Go heap: platforms without mmap
	memNotLoaded = ""
)

// region is a block of memory that loadFile handed out.
type region struct {
	start, end uintptr
	kind       string
	// sealed is the read-only memory readAnon allocated around the
	// weights (nil for others), which rewriteWeights opens for writing.
	sealed []byte
}

// regions are the live blocks loadFile handed out, so WeightsMemory can tell
// from a weight's address where it lives. Deriving the answer from addresses
// keeps it true for models derived from others (Quantize puts its matrices
// on the Go heap) and for every file format that loads through loadFile.
var regions struct {
	sync.Mutex
	live []region
}

func registerRegion(data []byte, kind string, sealed []byte) {
	if len(data) == 0 {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	regions.Lock()
	regions.live = append(regions.live, region{start, start + uintptr(len(data)), kind, sealed})
	regions.Unlock()
}

// rewriteWeights runs f, which may change b in place, with the memory
// holding b writable, if b lives in memory that readAnon filled (private
// to this model, read-only otherwise); else it reports false without
// calling f. Models are opened one at a time per region, so nothing else
// writes or protects it meanwhile.
func rewriteWeights(b []byte, f func()) (bool, error) {
	if len(b) == 0 {
		return false, nil
	}
	p := addrOf(b)
	regions.Lock()
	var sealed []byte
	for _, r := range regions.live {
		if r.start <= p && p < r.end {
			sealed = r.sealed
		}
	}
	regions.Unlock()
	if sealed == nil {
		return false, nil
	}
	if err := protectReadWrite(sealed); err != nil {
		return false, fmt.Errorf("mprotect: %w", err)
	}
	f()
	if err := protectReadOnly(sealed); err != nil {
		return true, fmt.Errorf("mprotect: %w", err)
	}
	return true, nil
}

func unregisterRegion(data []byte) {
	if len(data) == 0 {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	regions.Lock()
	defer regions.Unlock()
	for i, r := range regions.live {
		if r.start == start {
			regions.live = append(regions.live[:i], regions.live[i+1:]...)
			return
		}
	}
}

// memoryAt names the memory holding address p.
func memoryAt(p uintptr) string {
	regions.Lock()
	defer regions.Unlock()
	for _, r := range regions.live {
		if r.start <= p && p < r.end {
			return r.kind
		}
	}
	return memHeap
}

// WeightsMemory says where the weight matrices are: "mmap" (a mapping of the
// file), "anonymous (huge pages)" or "anonymous" (read into private memory),
// "heap" (made by this process, e.g. by Quantize) or "heap (read)" (read into
// the Go heap, on platforms without mmap). It is "" after Close.
func (m *Model) WeightsMemory() string {
	if m.closed.Load() {
		return memNotLoaded
	}
	w := &m.w
	t := &w.tokenEmbedding
	if len(w.layers) > 0 {
		t = &w.layers[0].w1 // the largest stream of a forward pass
	}
	switch {
	case len(t.f) > 0:
		return memoryAt(uintptr(unsafe.Pointer(&t.f[0])))
	case len(t.q) > 0:
		return memoryAt(uintptr(unsafe.Pointer(&t.q[0])))
	case len(t.h) > 0:
		return memoryAt(uintptr(unsafe.Pointer(&t.h[0])))
	case len(t.b) > 0:
		return memoryAt(uintptr(unsafe.Pointer(&t.b[0])))
	}
	return memNotLoaded
}

// loadFile returns the bytes of the file at path, mapped or read into
// anonymous memory as opts say, and the function that releases them. Parsers
// take views into data either way, so weights are never copied again.
// Errors from opening the file are the same in every mode.
func loadFile(path string, opts OpenOptions) ([]byte, func() error, error) {
	f, size, err := openForMapping(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	progress := opts.Progress
	if progress == nil {
		progress = func(done, total int64) {}
	}
	if size == 0 {
		progress(0, 0)
		return []byte{}, func() error { return nil }, nil
	}
	mode := opts.Mmap
	if mode == MmapAuto {
		mode = autoMmap(int64(size), memAvailable())
	}
	if mode == MmapOff {
		if avail := memAvailable(); avail >= 0 && int64(size) > avail {
			return nil, nil, fmt.Errorf("%w: the file is %d MiB, %d MiB are available",
				ErrNotEnoughMemory, size>>20, avail>>20)
		}
	}
	var (
		data, sealed []byte
		free         func() error
		kind         string
	)
	if mode == MmapOn && canMmap {
		data, free, err = mapOpened(f, size, path)
		if err != nil {
			return nil, nil, err
		}
		kind = memMapped
		progress(int64(size), int64(size))
	} else {
		data, sealed, free, kind, err = readAnon(f, size, dataStart(f, size), progress)
		if err != nil {
			return nil, nil, err
		}
	}
	if opts.Mlock {
		if err := lockMemory(data); err != nil {
			free()
			return nil, nil, fmt.Errorf("%w (%d MiB): %w; raise the limit with ulimit -l", ErrMlock, size>>20, err)
		}
	}
	registerRegion(data, kind, sealed)
	return data, func() error {
		unregisterRegion(data)
		return free()
	}, nil
}

// readAnon reads the file f of size bytes into memory from allocAnon (on
// unix, private anonymous memory on huge pages where the OS has them), then
// makes it read-only. It reports which memory it got, and the read-only
// block (to write it again: rewriteWeights). The file lands at the
// offset that puts its byte start on a weightAlign boundary, so the
// tensors that follow the header are aligned as the file itself aligns
// them.
func readAnon(f *os.File, size int, start int64, progress func(done, total int64)) (data, whole []byte, free func() error, kind string, err error) {
	whole, free, kind, err = allocAnon(size + weightAlign - 1)
	if err != nil {
		return nil, nil, nil, "", fmt.Errorf("allocating %d MiB: %w", size>>20, err)
	}
	pad := int((weightAlign - (uint64(addrOf(whole))+uint64(start))%weightAlign) % weightAlign)
	data = whole[pad : pad+size : pad+size]
	if err := readInto(f, data, readChunk, progress); err != nil {
		free()
		return nil, nil, nil, "", err
	}
	if err := protectReadOnly(whole); err != nil {
		free()
		return nil, nil, nil, "", fmt.Errorf("mprotect: %w", err)
	}
	if kind == memAnon && hugePageBytes(data) >= int64(size)/2 {
		kind = memAnonHuge
	}
	return data, whole, free, kind, nil
}

// weightAlign is the boundary readAnon puts the tensor data on: a cache
// line, so that a 64-byte vector load of a row touches one line, not two.
// A llama2.c checkpoint's 28-byte legacy header leaves every tensor of the
// file 28 bytes past a line (the 256-byte versioned header does not), and
// GGUF only promises 32-byte alignment. A mapping keeps the file's offsets,
// so this is one more thing reading the file into memory gives.
//
// On the 2-core Zen 5 VM, stories110M-shaped fp32 (legacy header), bench,
// one process per setting, alternated: pp128 608-663 -> 755-825 tok/s on 1
// thread and 1029-1112 -> 1197-1348 on 2 (3 pairs; the 8x3 tiles reload
// rows from L1, where a split load costs a second access). Generation
// streams from memory and gained less: tg128 median 63.2 -> 68.4 tok/s on
// 1 thread and 112.5 -> 124.9 on 2 (5 pairs), 65.2 -> 66.6 and 109.8 ->
// 113.9 in 8 more; stories42M's tg128 moved inside this VM's noise (2
// threads, 8 pairs: median 322 -> 276, the pairs going both ways, the
// spread 190-435). Streaming 440 MB of 768-float rows with kernels.MatVec alone,
// medians of 15 passes: 31.4-35.2 -> 37.1-37.2 GB/s on 1 thread, 64.1-68.6
// -> 72.4-75.2 on 2.
const weightAlign = 64

// dataStart returns the offset in f (size bytes) where the tensor data
// starts, or 0 when it cannot tell: the header's size for a llama2.c
// checkpoint, the data section for GGUF (parsed from a temporary mapping,
// since the metadata before it can be megabytes). Errors are left for the
// parser that reads the loaded bytes, which names them.
func dataStart(f *os.File, size int) int64 {
	head := make([]byte, min(size, versionedHeaderSize))
	if _, err := f.ReadAt(head, 0); err != nil {
		return 0
	}
	if gguf.IsGGUF(head) {
		if !canMmap {
			return 0
		}
		data, unmap, err := mapOpened(f, size, f.Name())
		if err != nil {
			return 0
		}
		defer unmap()
		gf, err := gguf.Parse(data)
		if err != nil {
			return 0
		}
		return gf.DataOffset
	}
	if len(head) < 4 { // parseCheckpoint's own check, before parseHeader
		return 0
	}
	if _, n, err := parseHeader(head); err == nil {
		return int64(n)
	}
	return 0
}

// Reads of the file into memory: readChunk bytes at a time, by readers
// goroutines taking chunks in turn, so one copies from the page cache while
// the other faults in pages. Not tuned: with these, 4.1 GB loaded in 1.8 s
// from the page cache and 18.5 s from disk (a loaded Zen 5 VM); 1 vs 2
// readers and 4-64 MiB chunks are still to be compared.
const (
	readChunk = 16 << 20
	readers   = 2
)

// readInto fills data with the file's bytes from offset 0, chunk bytes at a
// time, calling progress (serialized, with growing done) after each chunk.
func readInto(f *os.File, data []byte, chunk int, progress func(done, total int64)) error {
	total := int64(len(data))
	var (
		mu   sync.Mutex
		done int64
		errs = make([]error, readers)
		wg   sync.WaitGroup
	)
	chunks := (len(data) + chunk - 1) / chunk
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := r; c < chunks; c += readers {
				lo := c * chunk
				hi := min(lo+chunk, len(data))
				if _, err := f.ReadAt(data[lo:hi], int64(lo)); err != nil {
					errs[r] = fmt.Errorf("reading at %d: %w", lo, err)
					return
				}
				mu.Lock()
				done += int64(hi - lo)
				progress(done, total)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// autoMmap is MmapAuto's choice for a file of size bytes when avail bytes of
// memory are available (-1: unknown): read the file into memory whenever it
// fits with headroom to spare, else map it.
//
// Why read: generation streams every weight once per token, and on a Zen 5
// VM (2 cores, load average 9-15 from other jobs, so medians of 9 samples
// from 3 alternating runs) weights read into anonymous memory on huge pages
// generated 3.37 tok/s against 0.74 mapped on a TinyLlama-shaped fp32 file
// (4.1 GB, 1 thread; 2.35 against 0.90 with 2), and 23.4 against 19.4 on a
// stories110M-shaped one (438 MB, 1 thread; even with 2). In a quieter
// window (load ~2): 6.23 against 2.93 tok/s with 1 thread and 11.64 against
// 5.11 with 2 on the TinyLlama shape (llama.cpp: 5.86 and 12.75 with -mmp 0,
// 2.32 mapped). How fast a mapping streams also depends on how the file
// entered the page cache (large folios or not), so it varied 2x between
// runs; anonymous huge pages did not. Streaming a
// multi-GB file mapping costs 2-4x: 4 KiB page-cache pages under nested
// paging. Reading costs one copy at open (~1 s for 4 GB from the page
// cache) and the pages are no longer shared between processes.
//
// Why map otherwise: without headroom (1 GiB for KV caches and everyone
// else), private memory would push the system into swap or the OOM killer,
// where a mapping only makes the page cache evict. Where free memory is
// unknown (outside Linux) we map, as before: nothing was measured there.
func autoMmap(size, avail int64) MmapMode {
	const headroom = 1 << 30
	if avail < 0 || size+headroom > avail {
		return MmapOn
	}
	return MmapOff
}

// addrOf is the address of b's first byte.
func addrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
