package hub

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

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

// The lock holds across file descriptors (so across processes), not only
// within the process's table.
func TestLockFile(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" && runtime.GOOS != "windows" {
		t.Skip("no file lock on", runtime.GOOS)
	}
	p := filepath.Join(t.TempDir(), "x.lock")
	a, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer a.Close()
	b, err := os.OpenFile(p, os.O_RDWR, 0)
	require.NoError(t, err)
	defer b.Close()
	ok, err := lockFile(a)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = lockFile(b)
	require.NoError(t, err)
	require.False(t, ok)
	unlockFile(a)
	ok, err = lockFile(b)
	require.NoError(t, err)
	require.True(t, ok)
	unlockFile(b)

	// tryLock: taken once, released by unlock, which removes the file.
	unlock, ok, err := tryLock(p + "2")
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, err = tryLock(p + "2")
	require.NoError(t, err)
	require.False(t, ok)
	unlock()
	require.NoFileExists(t, p+"2")
}
