package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/hub"
	"github.com/llama2-go/llama2/internal/testfixture"
)

// miniHub is a small stand-in for Hugging Face (package hub's tests have
// the thorough one): repositories of files in LFS, their tree listing, and
// resolve URLs that answer HEAD with X-Linked-Etag and GET with ranges.
type miniHub struct {
	srv   *httptest.Server
	files map[string][]byte // "owner/name/path"
	// stall, if set, makes a GET send that many bytes and then wait for
	// the client to go.
	stall int
	mu    sync.Mutex
	gets  []string
}

func newMiniHub(t *testing.T) *miniHub {
	h := &miniHub{files: map[string][]byte{}}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	t.Setenv("HF_ENDPOINT", h.srv.URL)
	t.Setenv("HF_TOKEN", "")
	t.Setenv("LLAMA2_CACHE", t.TempDir())
	t.Setenv("LLAMA2_TOKENIZER_URL", h.srv.URL+"/karpathy/llama2.c/resolve/main/tokenizer.bin")
	return h
}

func (h *miniHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if repo, ok := strings.CutPrefix(r.URL.Path, "/api/models/"); ok {
		repo = strings.TrimSuffix(repo, "/tree/main")
		var entries []map[string]any
		for key, data := range h.files {
			if p, ok := strings.CutPrefix(key, repo+"/"); ok {
				sum := sha256.Sum256(data)
				entries = append(entries, map[string]any{"type": "file", "path": p, "size": len(data),
					"oid": strings.Repeat("0", 40), "lfs": map[string]any{"oid": hex.EncodeToString(sum[:]), "size": len(data)}})
			}
		}
		if entries == nil {
			w.Header().Set("X-Error-Code", "RepoNotFound")
			http.Error(w, "Repository not found", http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(entries)
		return
	}
	key := strings.Replace(strings.TrimPrefix(r.URL.Path, "/"), "/resolve/main/", "/", 1)
	data, ok := h.files[key]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	sum := sha256.Sum256(data)
	w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(sum[:])+`"`)
	w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
	if r.Method == http.MethodGet {
		h.mu.Lock()
		h.gets = append(h.gets, key+" "+r.Header.Get("Range"))
		h.mu.Unlock()
		if h.stall > 0 {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data[:h.stall])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

func (h *miniHub) add(t *testing.T, key, fixtureName string) {
	data, err := os.ReadFile(fixture(t, fixtureName))
	require.NoError(t, err)
	h.files[key] = data
}

// runCtx is runCLI with a context.
func runCtx(ctx context.Context, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// A llama2.c checkpoint pulled by path brings llama2.c's tokenizer;
// `llama2 -hf` then runs it as the local files run.
func TestPullLlama2cCheckpoint(t *testing.T) {
	h := newMiniHub(t)
	h.add(t, "test/tinyllamas/rand-mha-32k.bin", "rand-mha-32k.bin")
	h.add(t, "karpathy/llama2.c/tokenizer.bin", "tokenizer.bin") // llama2.c's: its SHA-256 is pinned
	cache := os.Getenv("LLAMA2_CACHE")
	model, err := filepath.Abs(fixture(t, "rand-mha-32k.bin"))
	require.NoError(t, err)
	tok, err := filepath.Abs(fixture(t, "tokenizer.bin"))
	require.NoError(t, err)
	t.Chdir(t.TempDir()) // no ./tokenizer.bin to fall back on

	code, stdout, stderr := runCLI(t, "", "pull", "test/tinyllamas/rand-mha-32k.bin")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, filepath.Join(cache, "hub", "test", "tinyllamas", "rand-mha-32k.bin")+"\n"+
		filepath.Join(cache, "llama2.c", "tokenizer.bin")+"\n", stdout)
	require.Contains(t, stderr, "pull: test/tinyllamas/rand-mha-32k.bin (8.2 MiB) into "+filepath.Join(cache, "hub"))
	require.Contains(t, stderr, "pull: test/tinyllamas/rand-mha-32k.bin: 8.2 MiB in ")
	require.Contains(t, stderr, "checksum verified")
	require.Contains(t, stderr, "pull: llama2.c's tokenizer.bin (423.7 KiB)")

	args := []string{"-n", "12", "-t", "0", "-i", "Once upon a time"}
	code, want, stderr := runCLI(t, "", append([]string{model, "-z", tok}, args...)...)
	require.Equal(t, 0, code, stderr)
	h.gets = nil
	code, got, stderr := runCLI(t, "", append([]string{"-hf", "test/tinyllamas/rand-mha-32k.bin"}, args...)...)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, want, got)
	require.Empty(t, h.gets, "a second pull comes from the cache")
	require.NotContains(t, stderr, "pull:")

	// The cached file by its path takes the cached tokenizer too.
	code, got, stderr = runCLI(t, "", append([]string{filepath.Join(cache, "hub", "test", "tinyllamas", "rand-mha-32k.bin")}, args...)...)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, want, got)

	code, stdout, stderr = runCLI(t, "", "list")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `REPO +FILE +SIZE +TYPE\n`+
		`\(llama2.c\) +tokenizer.bin +423.7 KiB +llama2.c tokenizer\n`+
		`test/tinyllamas +rand-mha-32k.bin +8.2 MiB +llama2.c checkpoint\n`+
		`2 files, 8.6 MiB, in `+regexpQuote(cache)+"\n$", stdout)

	// Without llama2.c's tokenizer, and none to fetch: an error that says what to do.
	require.NoError(t, os.Remove(filepath.Join(cache, "llama2.c", "tokenizer.bin")))
	delete(h.files, "karpathy/llama2.c/tokenizer.bin")
	code, _, stderr = runCLI(t, "", append([]string{"-hf", "test/tinyllamas/rand-mha-32k.bin"}, args...)...)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "error: llama2.c's tokenizer.bin (LLAMA2_TOKENIZER_URL says where from): "+os.Getenv("LLAMA2_TOKENIZER_URL")+": 404 Not Found")
	require.Contains(t, stderr, "; or name a tokenizer with -z\n")

	code, stdout, stderr = runCLI(t, "", "rm", "test/tinyllamas")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "removed "+filepath.Join(cache, "hub", "test", "tinyllamas", "rand-mha-32k.bin")+"\n", stdout)
	code, _, stderr = runCLI(t, "", "rm", "test/tinyllamas")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "error: not found: test/tinyllamas is not in the cache")
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// -hf with a tag on run, bench and serve: the GGUF file that carries it.
func TestHFFlag(t *testing.T) {
	h := newMiniHub(t)
	h.add(t, "test/randk-GGUF/randk-Q4_K_M.gguf", "gguf/randk-Q4_K_M.gguf")
	h.add(t, "test/randk-GGUF/randk-Q8_0.gguf", "gguf/randk-Q8_0.gguf")
	h.files["test/randk-GGUF/README.md"] = []byte("# randk\n")
	args := []string{"-n", "10", "-t", "0", "-i", "Once upon a time"}
	for _, tc := range []struct{ ref, file string }{{"test/randk-GGUF", "randk-Q4_K_M.gguf"}, {"test/randk-GGUF:q8_0", "randk-Q8_0.gguf"}} {
		code, want, stderr := runCLI(t, "", append([]string{fixture(t, "gguf/"+tc.file)}, args...)...)
		require.Equal(t, 0, code, stderr)
		code, got, stderr := runCLI(t, "", append([]string{"-hf", tc.ref}, args...)...)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, want, got, tc.ref)
		require.Contains(t, stderr, "pull: test/randk-GGUF/"+tc.file)
	}

	code, stdout, stderr := runCLI(t, "", "bench", "-hf", "test/randk-GGUF:Q8_0", "-p", "0", "-n", "4", "-r", "1", "-bandwidth=false", "-threads", "1")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "| randk-Q8_0.gguf |")

	// serve: pulls, then listens until the context ends.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var log testfixture.SyncBuffer
	go func() {
		done <- runServe(ctx, []string{"-hf", "test/randk-GGUF:Q8_0", "-addr", "127.0.0.1:0"}, io.Discard, &log)
	}()
	waitFor(t, "the server to listen", func() bool { return strings.Contains(log.String(), "listening") })
	cancel()
	require.Equal(t, 0, <-done)
	require.Contains(t, log.String(), "model="+filepath.Join(os.Getenv("LLAMA2_CACHE"), "hub", "test", "randk-GGUF", "randk-Q8_0.gguf"))

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-hf", "test/randk-GGUF:Q2_K"}, "error: no matching file: test/randk-GGUF has no GGUF file for tag Q2_K (tags: Q4_K_M, Q8_0)"},
		{[]string{"-hf", "nobody/nothing"}, "error: not found: repository nobody/nothing"},
		{[]string{"-hf", "no-repo"}, `error: bad model reference "no-repo"`},
		{[]string{"m.bin", "-hf", "test/randk-GGUF"}, "error: a checkpoint (m.bin) and -hf test/randk-GGUF: give one"},
		{[]string{"-n", "3"}, "error: no checkpoint given (a file, or -hf REPO[:TAG])"},
		{[]string{"bench", "-hf", "nobody/nothing"}, "error: not found: repository nobody/nothing"},
		{[]string{"serve", "-hf", "nobody/nothing"}, "error: not found: repository nobody/nothing"},
	} {
		code, _, stderr := runCLI(t, "", tc.args...)
		require.Equal(t, 1, code, tc.args)
		require.Contains(t, stderr, tc.want, tc.args)
	}
}

// Ctrl-C during a pull: exit code 130, and the next pull resumes.
func TestPullInterrupted(t *testing.T) {
	h := newMiniHub(t)
	h.add(t, "test/randk-GGUF/randk-Q8_0.gguf", "gguf/randk-Q8_0.gguf")
	h.stall = 100_000
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // Ctrl-C once some bytes are on disk
		defer cancel()
		dir := filepath.Join(os.Getenv("LLAMA2_CACHE"), "hub", "test", "randk-GGUF")
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			partials, _ := filepath.Glob(filepath.Join(dir, "*.partial"))
			if fi, err := os.Stat(strings.Join(partials, "")); err == nil && fi.Size() > 0 {
				return
			}
		}
	}()
	code, stdout, stderr := runCtx(ctx, "pull", "test/randk-GGUF:Q8_0")
	require.Equal(t, 130, code, stderr)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "interrupted at ")
	require.Contains(t, stderr, "pull again to resume: context canceled")

	h.stall = 0
	h.gets = nil
	code, stdout, stderr = runCLI(t, "", "pull", "test/randk-GGUF:Q8_0")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, ", resuming at ")
	require.Len(t, h.gets, 1)
	require.Regexp(t, `^test/randk-GGUF/randk-Q8_0.gguf bytes=[1-9][0-9]*-$`, h.gets[0])
	got, _ := os.ReadFile(strings.TrimSpace(stdout))
	want, _ := os.ReadFile(fixture(t, "gguf/randk-Q8_0.gguf"))
	require.Equal(t, want, got)
}

func TestPullUsageAndErrors(t *testing.T) {
	newMiniHub(t)
	for _, cmd := range []string{"pull", "list", "rm"} {
		code, stdout, stderr := runCLI(t, "", cmd, "-h")
		require.Equal(t, 0, code)
		require.Contains(t, stdout, "Usage: llama2 "+cmd)
		require.Empty(t, stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pull"}, "error: no model given\n\nUsage: llama2 pull"},
		{[]string{"pull", "-x"}, "error: flag provided but not defined: -x"},
		{[]string{"pull", "a/b/../c"}, `error: bad model reference "a/b/../c": path "../c": empty, . or .. element`},
		{[]string{"pull", "nobody/nothing:Q4_0"}, "error: not found: repository nobody/nothing: 401 Unauthorized (if it is private, set HF_TOKEN)"},
		{[]string{"rm"}, "error: no model given\n\nUsage: llama2 rm"},
		{[]string{"list", "x"}, `error: unexpected argument "x"`},
	} {
		code, _, stderr := runCLI(t, "", tc.args...)
		require.Equal(t, 1, code, tc.args)
		require.Contains(t, stderr, tc.want, tc.args)
	}
}

// The progress of a pull: one line redrawn in place on a terminal, log
// lines at each tenth otherwise.
func TestPullProgress(t *testing.T) {
	events := []hub.Progress{
		{Event: hub.Started, Total: 100 << 20, Done: 10 << 20, Resumed: 10 << 20},
		{Event: hub.Downloading, Total: 100 << 20, Done: 15 << 20, Resumed: 10 << 20, Elapsed: time.Second},
		{Event: hub.Downloading, Total: 100 << 20, Done: 22 << 20, Resumed: 10 << 20, Elapsed: 2 * time.Second},
		{Event: hub.Downloading, Total: 100 << 20, Done: 24 << 20, Resumed: 10 << 20, Elapsed: 2500 * time.Millisecond},
		{Event: hub.Retrying, Total: 100 << 20, Done: 24 << 20, Err: errors.New("o/r/m.gguf: connection reset")},
		{Event: hub.Downloading, Total: 100 << 20, Done: 30 << 20, Resumed: 24 << 20, Elapsed: time.Second},
		{Event: hub.Failed, Total: 100 << 20, Done: 30 << 20, Err: errors.New("o/r/m.gguf: disk full")},
		{Event: hub.Started, Total: 100 << 20, Done: 30 << 20, Resumed: 30 << 20},
		{Event: hub.Downloading, Total: 100 << 20, Done: 100 << 20, Resumed: 30 << 20, Elapsed: 7 * time.Second},
		{Event: hub.Verified, Total: 100 << 20, Done: 100 << 20, Resumed: 30 << 20, Elapsed: 7 * time.Second},
	}
	for i := range events {
		events[i].Repo, events[i].File, events[i].Path = "o/r", "m.gguf", "/cache/hub/o/r/m.gguf"
	}
	var log strings.Builder
	p := pullProgress(&log, false)
	for _, e := range events {
		p(e)
	}
	require.Equal(t, `pull: o/r/m.gguf (100.0 MiB) into /cache/hub/o/r/m.gguf, resuming at 10.0 MiB
pull: o/r/m.gguf: 22.0 MiB / 100.0 MiB   22%  6.0 MiB/s  13s left
pull: o/r/m.gguf: connection reset; resuming at 24.0 MiB
pull: o/r/m.gguf: 30.0 MiB / 100.0 MiB   30%  6.0 MiB/s  12s left
pull: o/r/m.gguf (100.0 MiB) into /cache/hub/o/r/m.gguf, resuming at 30.0 MiB
pull: o/r/m.gguf: 70.0 MiB in 7s (10.0 MiB/s), checksum verified
`, log.String())

	var term strings.Builder
	p = pullProgress(&term, true)
	for _, e := range events {
		p(e)
	}
	require.Equal(t, "pull: o/r/m.gguf (100.0 MiB) into /cache/hub/o/r/m.gguf, resuming at 10.0 MiB\n"+
		"\rpull: m.gguf  15.0 MiB / 100.0 MiB   15%  5.0 MiB/s  17s left"+
		"\rpull: m.gguf  22.0 MiB / 100.0 MiB   22%  6.0 MiB/s  13s left"+
		"\rpull: m.gguf  24.0 MiB / 100.0 MiB   24%  5.6 MiB/s  14s left\n"+
		"pull: o/r/m.gguf: connection reset; resuming at 24.0 MiB\n"+
		"\rpull: m.gguf  30.0 MiB / 100.0 MiB   30%  6.0 MiB/s  12s left\n"+ // ended by the failure
		"pull: o/r/m.gguf (100.0 MiB) into /cache/hub/o/r/m.gguf, resuming at 30.0 MiB\n"+
		"\rpull: m.gguf  100.0 MiB / 100.0 MiB  100%  10.0 MiB/s  0s left\n"+
		"pull: o/r/m.gguf: 70.0 MiB in 7s (10.0 MiB/s), checksum verified\n", term.String())
}
