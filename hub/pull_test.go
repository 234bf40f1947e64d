package hub

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	// Hermetic: no setting of the machine's reaches the tests.
	for _, v := range []string{"HF_ENDPOINT", "HF_TOKEN", "LLAMA2_CACHE", "LLAMA2_TOKENIZER_URL"} {
		os.Unsetenv(v)
	}
	retryBackoff = 0
	lockPoll = 5 * time.Millisecond
	if ref := os.Getenv("HUB_TEST_CHILD_PULL"); ref != "" {
		// A second process for TestPullTwoProcesses.
		path, err := Pull(context.Background(), ref, Options{
			Endpoint: os.Getenv("HUB_TEST_ENDPOINT"), CacheDir: os.Getenv("HUB_TEST_CACHE"),
			Progress: func(p Progress) {
				if p.Event == Waiting {
					fmt.Fprintln(os.Stderr, "waiting")
				}
			},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(path)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// events collects Progress reports.
type events struct {
	mu   sync.Mutex
	list []Progress
}

func (e *events) add(p Progress) { e.mu.Lock(); e.list = append(e.list, p); e.mu.Unlock() }

func (e *events) of(ev Event) []Progress {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Progress
	for _, p := range e.list {
		if p.Event == ev {
			out = append(out, p)
		}
	}
	return out
}

// cacheFiles lists the regular files under dir, relative and slashed.
func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func countPrefix(log []string, prefix string) int {
	n := 0
	for _, l := range log {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

const ggufRepo = "bartowski/Llama-3.2-1B-Instruct-GGUF"

func ggufHub(t *testing.T) (*fakeHub, map[string][]byte) {
	h := newFakeHub(t)
	files := map[string][]byte{
		"Llama-3.2-1B-Instruct-Q4_K_M.gguf": payload(300_000, 1),
		"Llama-3.2-1B-Instruct-Q8_0.gguf":   payload(500_000, 2),
		"Llama-3.2-1B-Instruct-f16.gguf":    payload(70_000, 3),
	}
	for name, data := range files {
		h.add(ggufRepo, name, &fakeFile{data: data, lfs: true})
	}
	h.add(ggufRepo, "README.md", &fakeFile{data: []byte("# a model\n")})
	h.add(ggufRepo, "mmproj-model-f16.gguf", &fakeFile{data: payload(100, 4), lfs: true})
	return h, files
}

// A tag picks from the tree listing; the resolve URL redirects to another
// host, which gets no token; a second pull is answered from the cache.
func TestPullByTag(t *testing.T) {
	h, files := ggufHub(t)
	opts := h.options(t)
	opts.Token = "secret"
	var ev events
	opts.Progress = ev.add

	path, err := Pull(context.Background(), ggufRepo+":q8_0", opts)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(opts.CacheDir, "hub", "bartowski", "Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q8_0.gguf"), path)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, files["Llama-3.2-1B-Instruct-Q8_0.gguf"], got)

	log := h.requests()
	require.Equal(t, []string{
		"api GET /api/models/" + ggufRepo + "/tree/main range= auth=Bearer secret",
		"api GET /" + ggufRepo + "/resolve/main/Llama-3.2-1B-Instruct-Q8_0.gguf range= auth=Bearer secret",
		"cdn GET /blobs/" + sha256Hex(got) + " range= auth=",
	}, log)
	verified := ev.of(Verified)
	require.Len(t, verified, 1)
	require.Equal(t, int64(len(got)), verified[0].Done)
	require.Equal(t, int64(len(got)), verified[0].Total)
	require.NotEmpty(t, ev.of(Downloading))

	// No tag: Q4_K_M.
	path, err = Pull(context.Background(), ggufRepo, opts)
	require.NoError(t, err)
	require.Equal(t, "Llama-3.2-1B-Instruct-Q4_K_M.gguf", filepath.Base(path))

	// Again, both: from the cache, without a request, even with the hub gone.
	h.requests()
	h.api.Close()
	for _, ref := range []string{ggufRepo + ":Q8_0", ggufRepo, ggufRepo + "/Llama-3.2-1B-Instruct-Q8_0.gguf"} {
		p, err := Pull(context.Background(), ref, opts)
		require.NoError(t, err, ref)
		require.FileExists(t, p)
		cached, ok := Cached(ref, opts)
		require.True(t, ok)
		require.Equal(t, p, cached)
	}
	require.Empty(t, h.requests())
	_, ok := Cached(ggufRepo+":f16", opts)
	require.False(t, ok)
}

// A path names a file: a HEAD of its resolve URL stops at the redirect
// that carries X-Linked-Etag and X-Linked-Size; files kept in Git are
// checked against their blob id (ETag).
func TestPullByPath(t *testing.T) {
	h := newFakeHub(t)
	model := h.add("karpathy/tinyllamas", "stories15M.bin", &fakeFile{data: payload(200_000, 5), lfs: true}).data
	small := h.add("karpathy/tinyllamas", "stories260K/tok512.bin", &fakeFile{data: payload(6227, 6)}).data
	opts := h.options(t)

	path, err := Pull(context.Background(), "karpathy/tinyllamas/stories15M.bin", opts)
	require.NoError(t, err)
	got, _ := os.ReadFile(path)
	require.Equal(t, model, got)
	require.Equal(t, []string{
		"api HEAD /karpathy/tinyllamas/resolve/main/stories15M.bin range= auth=",
		"api GET /karpathy/tinyllamas/resolve/main/stories15M.bin range= auth=",
		"cdn GET /blobs/" + sha256Hex(model) + " range= auth=",
	}, h.requests())

	path, err = Pull(context.Background(), "karpathy/tinyllamas/stories260K/tok512.bin", opts)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(opts.CacheDir, "hub", "karpathy", "tinyllamas", "stories260K", "tok512.bin"), path)
	got, _ = os.ReadFile(path)
	require.Equal(t, small, got)
}

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
	_, err := Pull(context.Background(), ggufRepo+":Q6_K", opts)
	require.ErrorIs(t, err, ErrChecksum)
	require.ErrorContains(t, err, ggufRepo+"/Llama-3.2-1B-Instruct-Q6_K.gguf")
	require.ErrorContains(t, err, "removed")
	require.Empty(t, cacheFiles(t, opts.CacheDir))
}

// dropAfter makes the storage's first GET send the headers of the whole
// range and then only n bytes before it drops the connection.
func dropAfter(h *fakeHub, n int) {
	var once sync.Once
	h.blob = func(w http.ResponseWriter, r *http.Request, f *fakeFile) bool {
		dropped := false
		once.Do(func() {
			dropped = true
			w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
			w.WriteHeader(http.StatusOK)
			w.Write(f.data[:n])
			w.(http.Flusher).Flush()
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		})
		return dropped
	}
}

// A connection dropped mid-file: the pull resumes with Range from where it
// stopped, and the result verifies.
func TestPullDroppedConnectionResumes(t *testing.T) {
	h, files := ggufHub(t)
	dropAfter(h, 123_457)
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
	require.Len(t, ev.of(Retrying), 1)
	require.Error(t, ev.of(Retrying)[0].Err)
}

// A server that never sends the end of the file: the pull gives up after
// maxFailures attempts without progress, keeps what it has, and the next
// pull resumes it.
// The body ends early, with a Content-Length (an unexpected EOF) or without
// one (a chunked body that just ends).
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
	release := make(chan struct{})
	defer close(release)
	h.blob = func(w http.ResponseWriter, r *http.Request, f *fakeFile) bool {
		w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
		w.WriteHeader(http.StatusOK)
		w.Write(f.data[:65536])
		w.(http.Flusher).Flush()
		select { // the rest never comes
		case <-r.Context().Done():
		case <-release:
		}
		return true
	}
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

// A server that stops sending: the watchdog abandons the attempt and the
// next one resumes.
func TestPullStalledRetries(t *testing.T) {
	defer func(d time.Duration) { stallTimeout = d }(stallTimeout)
	stallTimeout = 200 * time.Millisecond
	h, files := ggufHub(t)
	var once sync.Once
	h.blob = func(w http.ResponseWriter, r *http.Request, f *fakeFile) bool {
		stalled := false
		once.Do(func() {
			stalled = true
			w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
			w.WriteHeader(http.StatusOK)
			w.Write(f.data[:1000])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		return stalled
	}
	opts := h.options(t)
	var ev events
	opts.Progress = ev.add
	path, err := Pull(context.Background(), ggufRepo+":Q8_0", opts)
	require.NoError(t, err)
	got, _ := os.ReadFile(path)
	require.Equal(t, files["Llama-3.2-1B-Instruct-Q8_0.gguf"], got)
	retries := ev.of(Retrying)
	require.Len(t, retries, 1)
	require.ErrorContains(t, retries[0].Err, "nothing received for 200ms")
}

// Two pulls of one file at once: one downloads, the other waits for the
// lock and finds the file; the storage sends it once.
func TestPullConcurrent(t *testing.T) {
	h, files := ggufHub(t)
	opts := h.options(t)
	gate := make(chan struct{})
	h.blob = func(w http.ResponseWriter, r *http.Request, f *fakeFile) bool {
		<-gate
		return false
	}
	var wg sync.WaitGroup
	paths := make([]string, 2)
	errs := make([]error, 2)
	waiting := make(chan struct{})
	var once sync.Once
	for i := range 2 {
		o := opts
		o.Progress = func(p Progress) {
			if p.Event == Waiting {
				once.Do(func() { close(waiting) })
			}
		}
		wg.Go(func() { paths[i], errs[i] = Pull(context.Background(), ggufRepo+":Q8_0", o) })
	}
	select { // one holds the lock, the other waits for it
	case <-waiting:
	case <-time.After(10 * time.Second):
		close(gate)
		t.Fatal("neither pull waited for the other")
	}
	close(gate)
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.Equal(t, paths[0], paths[1])
	got, _ := os.ReadFile(paths[0])
	require.Equal(t, files["Llama-3.2-1B-Instruct-Q8_0.gguf"], got)
	require.Equal(t, 1, countPrefix(h.requests(), "cdn GET"))
	require.NoFileExists(t, paths[0]+".lock")
}

// The same across two processes: the lock is a file lock.
func TestPullTwoProcesses(t *testing.T) {
	h := newFakeHub(t)
	data := h.add("karpathy/tinyllamas", "stories15M.bin", &fakeFile{data: payload(400_000, 5), lfs: true}).data
	opts := h.options(t)
	gate := make(chan struct{})
	h.blob = func(w http.ResponseWriter, r *http.Request, f *fakeFile) bool {
		<-gate
		return false
	}
	ref := "karpathy/tinyllamas/stories15M.bin"
	type result struct {
		path string
		err  error
	}
	mine := make(chan result)
	go func() {
		p, err := Pull(context.Background(), ref, opts)
		mine <- result{p, err}
	}()
	for countPrefix(h.peek(), "cdn GET") == 0 { // this process has the lock and waits for the body
		time.Sleep(5 * time.Millisecond)
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	child := exec.Command(exe, "-test.run=^$")
	child.Env = append(os.Environ(), "HUB_TEST_CHILD_PULL="+ref, "HUB_TEST_ENDPOINT="+opts.Endpoint, "HUB_TEST_CACHE="+opts.CacheDir)
	stderr, err := child.StderrPipe()
	require.NoError(t, err)
	var stdout strings.Builder
	child.Stdout = &stdout
	require.NoError(t, child.Start())
	sc := bufio.NewScanner(stderr)
	first := make(chan string, 1)
	go func() { sc.Scan(); first <- sc.Text() }()
	select {
	case line := <-first:
		require.Equal(t, "waiting", line) // for this process's lock
	case <-time.After(10 * time.Second):
		close(gate)
		t.Fatal("the child process does not wait for this one's lock")
	}
	close(gate)
	r := <-mine
	require.NoError(t, r.err)
	for sc.Scan() {
		t.Log("child:", sc.Text())
	}
	require.NoError(t, child.Wait())
	require.Equal(t, r.path, strings.TrimSpace(stdout.String()))
	got, _ := os.ReadFile(r.path)
	require.Equal(t, data, got)
	require.Equal(t, 1, countPrefix(h.requests(), "cdn GET"))
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

func TestPullGated(t *testing.T) {
	h, _ := ggufHub(t)
	h.gate(ggufRepo)
	h.token = "good"
	opts := h.options(t)

	_, err := Pull(context.Background(), ggufRepo+":Q8_0", opts)
	require.ErrorIs(t, err, ErrGated)
	require.ErrorContains(t, err, ggufRepo)
	require.ErrorContains(t, err, "401")
	require.ErrorContains(t, err, "set HF_TOKEN")
	require.Empty(t, cacheFiles(t, filepath.Join(opts.CacheDir, "hub", "bartowski", "Llama-3.2-1B-Instruct-GGUF")))

	opts.Token = "bad"
	_, err = Pull(context.Background(), ggufRepo+":Q8_0", opts)
	require.ErrorIs(t, err, ErrGated)
	require.ErrorContains(t, err, "403")
	require.ErrorContains(t, err, "the token in HF_TOKEN has no access")

	opts.Token = "good"
	_, err = Pull(context.Background(), ggufRepo+":Q8_0", opts)
	require.NoError(t, err)
}

func TestPullNotFound(t *testing.T) {
	h, _ := ggufHub(t)
	opts := h.options(t)
	for _, ref := range []string{"nobody/nothing", "nobody/nothing:Q4_0", "nobody/nothing/model.bin"} {
		_, err := Pull(context.Background(), ref, opts)
		require.ErrorIs(t, err, ErrNotFound, ref)
		require.ErrorContains(t, err, "repository nobody/nothing", ref)
		require.ErrorContains(t, err, "set HF_TOKEN", ref) // anonymous: it may be private
	}
	_, err := Pull(context.Background(), ggufRepo+"/missing.gguf", opts)
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, ggufRepo+" has no file missing.gguf")
	require.Empty(t, cacheFiles(t, opts.CacheDir))
}

func TestPullNoMatch(t *testing.T) {
	h, _ := ggufHub(t)
	h.add(ggufRepo, "Llama-3.2-1B-Instruct-IQ4_XS.gguf", &fakeFile{data: payload(10, 1), lfs: true})
	h.add(ggufRepo, "extra/Llama-3.2-1B-Instruct-Q4_K_M.gguf", &fakeFile{data: payload(10, 2), lfs: true})
	opts := h.options(t)

	_, err := Pull(context.Background(), ggufRepo+":Q2_K", opts)
	require.ErrorIs(t, err, ErrNoMatch)
	require.ErrorContains(t, err, ggufRepo+" has no GGUF file for tag Q2_K (tags: IQ4_XS, Q4_K_M, Q8_0, f16)")

	_, err = Pull(context.Background(), ggufRepo+":Q4_K_M", opts)
	require.ErrorIs(t, err, ErrAmbiguous)
	require.ErrorContains(t, err, "Llama-3.2-1B-Instruct-Q4_K_M.gguf, extra/Llama-3.2-1B-Instruct-Q4_K_M.gguf")
	require.Empty(t, cacheFiles(t, opts.CacheDir))
}

// The listing's pages are followed (Link: rel="next").
func TestPullPagedListing(t *testing.T) {
	h, files := ggufHub(t)
	h.pageSize = 2
	opts := h.options(t)
	path, err := Pull(context.Background(), ggufRepo+":f16", opts) // on the second page
	require.NoError(t, err)
	got, _ := os.ReadFile(path)
	require.Equal(t, files["Llama-3.2-1B-Instruct-f16.gguf"], got)
	require.Equal(t, 3, countPrefix(h.requests(), "api GET /api/models/"))
}

// HF_ENDPOINT, HF_TOKEN and LLAMA2_CACHE stand for empty Options fields;
// without LLAMA2_CACHE the cache is the user's cache directory + llama2.
func TestPullEnvironment(t *testing.T) {
	h, _ := ggufHub(t)
	cache := t.TempDir()
	t.Setenv("HF_ENDPOINT", h.api.URL+"/")
	t.Setenv("HF_TOKEN", "from-env")
	t.Setenv("LLAMA2_CACHE", cache)
	path, err := Pull(context.Background(), ggufRepo+":f16", Options{})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(path, cache+string(filepath.Separator)), path)
	require.Contains(t, h.requests()[0], "auth=Bearer from-env")

	t.Setenv("LLAMA2_CACHE", "")
	userCache, err := os.UserCacheDir()
	if err != nil {
		t.Skip("no user cache directory here:", err)
	}
	c, err := newClient(Options{})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(userCache, "llama2"), c.cacheDir)

	t.Setenv("HF_ENDPOINT", "ftp://mirror")
	_, err = Pull(context.Background(), ggufRepo, Options{})
	require.ErrorContains(t, err, `hub endpoint "ftp://mirror" (HF_ENDPOINT)`)
}

func TestProgressRate(t *testing.T) {
	p := Progress{Done: 3 << 20, Total: 10 << 20, Resumed: 1 << 20, Elapsed: 2 * time.Second}
	require.InDelta(t, float64(1<<20), p.Rate(), 1)
	require.Equal(t, 7*time.Second, p.Remaining())
	require.Equal(t, time.Duration(-1), Progress{Total: 5}.Remaining())
}
