package hub

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The X-Linked-Etag is what the download is checked against.
func TestPullLinkedEtagMismatch(t *testing.T) {
	h := newFakeHub(t)
	h.add("karpathy/tinyllamas", "stories15M.bin", &fakeFile{data: payload(50_000, 5), lfs: true, sha256: sha256Hex([]byte("other"))})
	opts := h.options(t)
	_, err := Pull(context.Background(), "karpathy/tinyllamas/stories15M.bin", opts)
	require.ErrorIs(t, err, ErrChecksum)
	require.ErrorContains(t, err, "karpathy/tinyllamas/stories15M.bin")
	require.ErrorContains(t, err, sha256Hex([]byte("other")))
	require.Empty(t, cacheFiles(t, opts.CacheDir))
}

// A wrong SHA-256 in the listing: an error, and nothing left in the cache.
func TestPullWrongChecksum(t *testing.T) {
	h, _ := ggufHub(t)
	h.add(ggufRepo, "Llama-3.2-1B-Instruct-Q6_K.gguf", &fakeFile{data: payload(90_000, 9), lfs: true, sha256: sha256Hex([]byte("x"))})
	opts := h.options(t)
	var ev events
	opts.Progress = ev.add
	_, err := Pull(context.Background(), ggufRepo+":Q6_K", opts)
	require.ErrorIs(t, err, ErrChecksum)
	failed := ev.of(Failed)
	require.Len(t, failed, 1)
	require.Equal(t, err, failed[0].Err)
	require.ErrorContains(t, err, ggufRepo+"/Llama-3.2-1B-Instruct-Q6_K.gguf")
	require.ErrorContains(t, err, "removed")
	require.Empty(t, cacheFiles(t, opts.CacheDir))
}

// cutFirst makes the storage's first GET send the headers of the whole
// file and its first n bytes, then end as end says.
func cutFirst(h *fakeHub, n int, end func(w http.ResponseWriter, r *http.Request)) {
	var once sync.Once
	h.blob = func(w http.ResponseWriter, r *http.Request, f *fakeFile) bool {
		cut := false
		once.Do(func() {
			cut = true
			w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
			w.WriteHeader(http.StatusOK)
			w.Write(f.data[:n])
			w.(http.Flusher).Flush()
			end(w, r)
		})
		return cut
	}
}

// dropAfter makes the storage's first GET drop the connection after n
// bytes.
func dropAfter(h *fakeHub, n int) {
	cutFirst(h, n, func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	})
}

// stallAfter makes the storage's first GET send nothing after n bytes
// (until the client goes).
func stallAfter(h *fakeHub, n int) {
	cutFirst(h, n, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
}

// A server that never sends the end of the file, with a Content-Length (an
// unexpected EOF) or without one (a chunked body that just ends): the pull
// gives up after maxFailures attempts without progress, keeps what it has,
// and the next pull resumes it.
func TestPullTruncatedBody(t *testing.T) {
	t.Run("Content-Length", func(t *testing.T) { testPullTruncatedBody(t, true) })
	t.Run("chunked", func(t *testing.T) { testPullTruncatedBody(t, false) })
}

func testPullTruncatedBody(t *testing.T, withLength bool) {
	h, files := ggufHub(t)
	const have = 200_000
	h.blob = func(w http.ResponseWriter, r *http.Request, f *fakeFile) bool {
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			start, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(f.data)-1, len(f.data)))
		}
		if withLength {
			w.Header().Set("Content-Length", strconv.Itoa(len(f.data)-start))
		}
		if start > 0 {
			w.WriteHeader(http.StatusPartialContent)
		}
		if start < have {
			w.Write(f.data[start:have])
		}
		if withLength {
			w.(http.Flusher).Flush()
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		}
		return true
	}
	opts := h.options(t)
	_, err := Pull(context.Background(), ggufRepo+":Q8_0", opts)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrChecksum)
	require.ErrorContains(t, err, ggufRepo+"/Llama-3.2-1B-Instruct-Q8_0.gguf")
	require.ErrorContains(t, err, "pull again to resume")
	if !withLength {
		require.ErrorContains(t, err, "the connection closed at 200000 of 500000 bytes")
	}
	log := h.requests()
	require.Equal(t, maxFailures+1, countPrefix(log, "cdn GET"), log) // one with progress, then maxFailures without
	partials := cacheFiles(t, opts.CacheDir)
	require.Len(t, partials, 1)
	require.True(t, strings.HasSuffix(partials[0], ".partial"), partials)
	fi, err := os.Stat(filepath.Join(opts.CacheDir, partials[0]))
	require.NoError(t, err)
	require.Equal(t, int64(have), fi.Size())

	h.blob = nil
	path, err := Pull(context.Background(), ggufRepo+":Q8_0", opts)
	require.NoError(t, err)
	got, _ := os.ReadFile(path)
	require.Equal(t, files["Llama-3.2-1B-Instruct-Q8_0.gguf"], got)
	log = h.requests()
	require.Contains(t, log[len(log)-1], fmt.Sprintf("range=bytes=%d-", have))
	require.Equal(t, []string{"hub/bartowski/Llama-3.2-1B-Instruct-GGUF/.tags/Q8_0", "hub/bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q8_0.gguf"},
		cacheFiles(t, opts.CacheDir))
}

// Cancelling the context (Ctrl-C) while a slow server sends returns at
// once and leaves a partial file that the next pull resumes.
func TestPullCancelledResumes(t *testing.T) {
	h, files := ggufHub(t)
	stallAfter(h, 65536)
	opts := h.options(t)
	ctx, cancel := context.WithCancel(context.Background())
	opts.Progress = func(p Progress) {
		if p.Event == Downloading && p.Done > 0 {
			cancel()
		}
	}
	_, err := Pull(ctx, ggufRepo+":Q8_0", opts)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "pull again to resume")
	partials := cacheFiles(t, opts.CacheDir)
	require.Len(t, partials, 1)
	fi, _ := os.Stat(filepath.Join(opts.CacheDir, partials[0]))
	kept := fi.Size()
	require.True(t, kept > 0 && kept <= 65536, kept)

	h.blob = nil
	h.requests()
	opts.Progress = nil
	path, err := Pull(context.Background(), ggufRepo+":Q8_0", opts)
	require.NoError(t, err)
	got, _ := os.ReadFile(path)
	require.Equal(t, files["Llama-3.2-1B-Instruct-Q8_0.gguf"], got)
	log := h.requests()
	require.Contains(t, log[len(log)-1], fmt.Sprintf("range=bytes=%d-", kept))
}

// A connection dropped mid-file, or one that stops sending (which the
// watchdog abandons): the pull resumes with Range from where it stopped,
// and the result verifies.
func TestPullResumesAfterFault(t *testing.T) {
	defer func(d time.Duration) { stallTimeout = d }(stallTimeout)
	stallTimeout = time.Second // only the stalled attempt waits so long, even on a busy machine
	for _, tc := range []struct {
		name  string
		fault func(*fakeHub, int)
		why   string
	}{
		{"dropped", dropAfter, "unexpected EOF"},
		{"stalled", stallAfter, "nothing received for 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, files := ggufHub(t)
			tc.fault(h, 123_457)
			opts := h.options(t)
			var ev events
			opts.Progress = ev.add
			path, err := Pull(context.Background(), ggufRepo+":Q8_0", opts)
			require.NoError(t, err)
			got, _ := os.ReadFile(path)
			require.Equal(t, files["Llama-3.2-1B-Instruct-Q8_0.gguf"], got)
			log := h.requests()
			require.Equal(t, 2, countPrefix(log, "cdn GET"), log)
			require.Contains(t, log[len(log)-1], "range=bytes=123457-")
			retries := ev.of(Retrying)
			require.Len(t, retries, 1)
			require.ErrorContains(t, retries[0].Err, tc.why)
			require.ErrorContains(t, retries[0].Err, ggufRepo+"/Llama-3.2-1B-Instruct-Q8_0.gguf")
		})
	}
}

// A server that ignores Range: the partial file is started over.
func TestPullRangeIgnored(t *testing.T) {
	h, files := ggufHub(t)
	want := files["Llama-3.2-1B-Instruct-Q8_0.gguf"]
	h.blob = func(w http.ResponseWriter, r *http.Request, f *fakeFile) bool {
		r.Header.Del("Range")
		return false
	}
	opts := h.options(t)
	dest := filepath.Join(opts.CacheDir, "hub", "bartowski", "Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q8_0.gguf")
	partial := dest + "." + sha256Hex(want)[:16] + ".partial"
	require.NoError(t, os.MkdirAll(filepath.Dir(dest), 0o755))
	require.NoError(t, os.WriteFile(partial, want[:1000], 0o644))
	var ev events
	opts.Progress = ev.add
	path, err := Pull(context.Background(), ggufRepo+":Q8_0", opts)
	require.NoError(t, err)
	got, _ := os.ReadFile(path)
	require.Equal(t, want, got)
	require.Equal(t, int64(1000), ev.of(Started)[0].Resumed)
	log := h.requests()
	require.Contains(t, log[len(log)-1], "range=bytes=1000-") // asked, and ignored
	require.NoFileExists(t, partial)
}

// A partial file whose bytes are wrong is resumed, fails the checksum and
// is removed; the next pull starts afresh. One of an older version of the
// file (another checksum) is removed at once.
func TestPullBadPartial(t *testing.T) {
	h, files := ggufHub(t)
	want := files["Llama-3.2-1B-Instruct-Q8_0.gguf"]
	opts := h.options(t)
	dest := filepath.Join(opts.CacheDir, "hub", "bartowski", "Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q8_0.gguf")
	partial := dest + "." + sha256Hex(want)[:16] + ".partial"
	old := dest + ".0123456789abcdef.partial"
	require.NoError(t, os.MkdirAll(filepath.Dir(dest), 0o755))
	require.NoError(t, os.WriteFile(partial, payload(1000, 99), 0o644))
	require.NoError(t, os.WriteFile(old, payload(1000, 98), 0o644))

	_, err := Pull(context.Background(), ggufRepo+":Q8_0", opts)
	require.ErrorIs(t, err, ErrChecksum)
	require.NoFileExists(t, partial)
	require.NoFileExists(t, old)

	path, err := Pull(context.Background(), ggufRepo+":Q8_0", opts)
	require.NoError(t, err)
	got, _ := os.ReadFile(path)
	require.Equal(t, want, got)
}
