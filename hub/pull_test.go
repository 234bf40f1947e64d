package hub

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
