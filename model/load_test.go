package model

import (
	"bytes"
	"flag"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/llama2-go/llama2/gguf"
	"github.com/stretchr/testify/require"
)

// loadModes are the explicit modes; MmapAuto resolves to one of them.
var loadModes = []MmapMode{MmapOn, MmapOff}

// wantMemory is what WeightsMemory should say for a model opened in mode.
func wantMemory(t *testing.T, mode MmapMode, got string) {
	t.Helper()
	switch {
	case mode == MmapOn && canMmap:
		require.Equal(t, "mmap", got)
	case runtime.GOOS == "linux":
		// Huge pages depend on the kernel's settings and free memory.
		require.Contains(t, []string{"anonymous", "anonymous (huge pages)"}, got)
	case canMmap && runtime.GOOS != "windows":
		require.Equal(t, "anonymous", got)
	default:
		require.Equal(t, "heap (read)", got)
	}
}

func TestOpenWithModesGiveSameLogits(t *testing.T) {
	v1 := tinyConfig
	v1.Version, v1.SharedClassifier = 1, true
	paths := []string{writeCheckpoint(t, tinyConfig, 3), writeCheckpoint(t, v1, 4)}
	for _, name := range []string{"stories260K.bin", "stories260K-q80.bin"} {
		if p := filepath.Join(testdataDir, name); fileExists(p) {
			paths = append(paths, p)
		}
	}
	for _, path := range paths {
		var logits [2][]float32
		for i, mode := range loadModes {
			m, err := OpenWith(path, OpenOptions{Mmap: mode})
			require.NoError(t, err, mode)
			wantMemory(t, mode, m.WeightsMemory())
			s, err := m.NewSession(SessionOptions{Threads: 2})
			require.NoError(t, err)
			for pos, tok := range []int{1, 5, 7, 2} {
				l, err := s.Forward(tok%m.Config.VocabSize, pos)
				require.NoError(t, err)
				logits[i] = append(logits[i], l...)
			}
			s.Close()
			require.NoError(t, m.Close())
		}
		require.NotEmpty(t, logits[0])
		require.Equal(t, logits[0], logits[1], "%s: logits differ between mmap and read", path)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestCloseReleasesInBothModes checks that Close unmaps the weights: the
// address range disappears from the process's mappings (Linux) and from the
// regions WeightsMemory knows.
func TestCloseReleasesInBothModes(t *testing.T) {
	path := writeCheckpoint(t, tinyConfig, 5)
	for _, mode := range loadModes {
		before := len(regions.live)
		m, err := OpenWith(path, OpenOptions{Mmap: mode})
		require.NoError(t, err)
		require.Len(t, regions.live, before+1)
		addr := uintptr(unsafe.Pointer(&m.w.layers[0].w1.f[0]))
		if runtime.GOOS == "linux" {
			require.True(t, mapped(t, addr), "%v: weights not in /proc/self/maps", mode)
		}
		require.NoError(t, m.Close())
		require.Equal(t, "", m.WeightsMemory())
		require.Len(t, regions.live, before)
		require.Equal(t, "heap", memoryAt(addr))
		if runtime.GOOS == "linux" && (mode == MmapOn || canMmap) {
			require.False(t, mapped(t, addr), "%v: weights still mapped after Close", mode)
		}
		require.NoError(t, m.Close(), "Close is idempotent")
	}
}

// mapped reports whether /proc/self/maps has a mapping holding addr.
func mapped(t *testing.T, addr uintptr) bool {
	maps, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	for line := range strings.Lines(string(maps)) {
		rng, _, _ := strings.Cut(line, " ")
		a, b, _ := strings.Cut(rng, "-")
		lo, err1 := strconv.ParseUint(a, 16, 64)
		hi, err2 := strconv.ParseUint(b, 16, 64)
		if err1 == nil && err2 == nil && uintptr(lo) <= addr && addr < uintptr(hi) {
			return true
		}
	}
	return false
}

func TestReadIntoProgress(t *testing.T) {
	want := make([]byte, 10<<20+123)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	path := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.WriteFile(path, want, 0o644))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	got := make([]byte, len(want))
	var calls []int64
	require.NoError(t, readInto(f, got, 1<<20, func(done, total int64) {
		require.Equal(t, int64(len(want)), total)
		calls = append(calls, done)
	}))
	require.True(t, bytes.Equal(want, got), "read bytes differ from the file")
	require.Len(t, calls, 11, "one call per 1 MiB chunk")
	for i := 1; i < len(calls); i++ {
		require.Greater(t, calls[i], calls[i-1], "progress went backwards: %v", calls)
	}
	require.Equal(t, int64(len(want)), calls[len(calls)-1])

	// A file shorter than the buffer is an error, not zeros.
	err = readInto(f, make([]byte, len(want)+1), 1<<20, func(done, total int64) {})
	require.ErrorIs(t, err, io.EOF)
}

func TestOpenWithProgress(t *testing.T) {
	path := writeCheckpoint(t, tinyConfig, 6)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	for _, mode := range loadModes {
		var calls [][2]int64
		m, err := OpenWith(path, OpenOptions{Mmap: mode, Progress: func(done, total int64) {
			calls = append(calls, [2]int64{done, total})
		}})
		require.NoError(t, err)
		require.NoError(t, m.Close())
		require.NotEmpty(t, calls, mode)
		require.Equal(t, [2]int64{fi.Size(), fi.Size()}, calls[len(calls)-1], mode)
		for i := 1; i < len(calls); i++ {
			require.Greater(t, calls[i][0], calls[i-1][0])
		}
	}
}

func TestOpenErrorsSameInBothModes(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.bin")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	truncated := filepath.Join(dir, "truncated.bin")
	full := checkpointBytes(tinyConfig, 1)
	require.NoError(t, os.WriteFile(truncated, full[:len(full)-4], 0o644))
	for _, c := range []struct {
		path, want string
		is         error
	}{
		{filepath.Join(dir, "missing.bin"), "no such file", fs.ErrNotExist},
		{empty, "shorter than any checkpoint header", nil},
		{truncated, "truncated or not a checkpoint", nil},
		{dir, "", nil},
	} {
		var errs []string
		for _, mode := range loadModes {
			_, err := OpenWith(c.path, OpenOptions{Mmap: mode})
			require.Error(t, err, "%s %v", c.path, mode)
			require.ErrorContains(t, err, filepath.Base(c.path))
			require.ErrorContains(t, err, c.want)
			if c.is != nil {
				require.ErrorIs(t, err, c.is)
			}
			errs = append(errs, err.Error())
		}
		require.Equal(t, errs[0], errs[1], "errors differ between modes")
	}
}

func TestOpenWithMlock(t *testing.T) {
	path := writeCheckpoint(t, tinyConfig, 7)
	for _, mode := range loadModes {
		m, err := OpenWith(path, OpenOptions{Mmap: mode, Mlock: true})
		if err != nil {
			// The limit (ulimit -l) may be too low here; then the error says so.
			require.ErrorIs(t, err, ErrMlock)
			require.ErrorContains(t, err, "ulimit -l")
			continue
		}
		require.NoError(t, m.Close())
	}
}

func TestMmapModeFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want MmapMode
	}{
		{nil, MmapAuto},
		{[]string{"-mmap"}, MmapOn},
		{[]string{"-mmap=true"}, MmapOn},
		{[]string{"-mmap=false"}, MmapOff},
		{[]string{"-mmap=0"}, MmapOff},
		{[]string{"-mmap=false", "-mmap=auto"}, MmapAuto},
	} {
		var m MmapMode
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.Var(&m, "mmap", "")
		require.NoError(t, fs.Parse(c.args))
		require.Equal(t, c.want, m, c.args)
		var back MmapMode
		require.NoError(t, back.Set(m.String()), "String round-trips")
		require.Equal(t, m, back)
	}
	var m MmapMode
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&m, "mmap", "")
	require.ErrorContains(t, fs.Parse([]string{"-mmap=maybe"}), "want true, false or auto")
}

func TestAutoMmap(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		size, avail int64
		want        MmapMode
	}{
		{gib / 2, 20 * gib, MmapOff},     // small files read too: they stream faster
		{4 * gib, 20 * gib, MmapOff},     // room to spare
		{4 * gib, 4*gib + gib/2, MmapOn}, // too little headroom: map, let the page cache cope
		{4 * gib, -1, MmapOn},            // unknown free memory: map
		{64 << 10, 20 * gib, MmapOff},    // tiny: either works; reading is as cheap
		{64 << 10, gib / 2, MmapOn},      // but not when memory is short
	} {
		require.Equal(t, c.want, autoMmap(c.size, c.avail), "%d bytes, %d available", c.size, c.avail)
	}
}

func TestQuantizedWeightsAreOnTheHeap(t *testing.T) {
	m, err := OpenWith(writeCheckpoint(t, tinyConfig, 8), OpenOptions{Mmap: MmapOn})
	require.NoError(t, err)
	q, err := m.Quantize(RowAlignedGroupSize(m.Config))
	require.NoError(t, err)
	defer q.Close()
	require.Equal(t, "heap", q.WeightsMemory())
}

func TestReadAnonAlignsTensorData(t *testing.T) {
	v1 := tinyConfig
	v1.Version = 1
	b := gguf.NewBuilder()
	b.Add("general.name", "x") // 1 odd-length string: the data offset is 32 mod 64 or 0
	b.AddTensor("t", gguf.TypeF32, []int64{3}, make([]byte, 12))
	g, err := b.Bytes()
	require.NoError(t, err)
	gf, err := gguf.Parse(g)
	require.NoError(t, err)
	for _, c := range []struct {
		path  string
		start int64
	}{
		{writeCheckpoint(t, tinyConfig, 3), legacyHeaderSize},
		{writeCheckpoint(t, v1, 4), versionedHeaderSize},
		{writeTemp(t, "t.gguf", g), gf.DataOffset},
		{writeTemp(t, "short", []byte{1, 2, 3}), 0}, // not a checkpoint: no start
	} {
		want, err := os.ReadFile(c.path)
		require.NoError(t, err)
		f, err := os.Open(c.path)
		require.NoError(t, err)
		start := dataStart(f, len(want))
		require.Equal(t, c.start, start, c.path)
		data, _, free, _, err := readAnon(f, len(want), start, func(done, total int64) {})
		require.NoError(t, err)
		require.Zero(t, (uint64(addrOf(data))+uint64(start))%weightAlign, "%s: tensor data at %p+%d", c.path, data, start)
		require.Equal(t, want, data)
		require.NoError(t, free())
		require.NoError(t, f.Close())
	}
	m, err := OpenWith(writeCheckpoint(t, tinyConfig, 5), OpenOptions{Mmap: MmapOff})
	require.NoError(t, err)
	defer m.Close()
	require.Zero(t, uintptr(unsafe.Pointer(&m.w.tokenEmbedding.f[0]))%weightAlign)
}

// FuzzDataStart: dataStart reads the header of any file without panicking,
// and never puts the tensor data past the file's end.
func FuzzDataStart(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Add(make([]byte, legacyHeaderSize))
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "f")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		file, err := os.Open(path)
		require.NoError(t, err)
		defer file.Close()
		start := dataStart(file, len(data))
		require.True(t, start >= 0 && start <= int64(len(data)), "start %d of %d bytes", start, len(data))
	})
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}
