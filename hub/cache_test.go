package hub

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestListRemove(t *testing.T) {
	h, _ := ggufHub(t)
	h.add("karpathy/tinyllamas", "stories15M.bin", &fakeFile{data: checkpointHeader(), lfs: true})
	opts := h.options(t)
	for _, ref := range []string{ggufRepo + ":Q8_0", ggufRepo + ":f16", "karpathy/tinyllamas/stories15M.bin"} {
		_, err := Pull(context.Background(), ref, opts)
		require.NoError(t, err, ref)
	}
	// An interrupted download.
	repoDir := filepath.Join(opts.CacheDir, "hub", "bartowski", "Llama-3.2-1B-Instruct-GGUF")
	partial := filepath.Join(repoDir, "Llama-3.2-1B-Instruct-Q4_K_M.gguf.0123456789abcdef.partial")
	require.NoError(t, os.WriteFile(partial, []byte("12345"), 0o644))

	entries, err := List(opts)
	require.NoError(t, err)
	type row struct {
		repo, file string
		size       int64
		kind       Kind
		partial    bool
	}
	var rows []row
	for _, e := range entries {
		rows = append(rows, row{e.Repo, e.File, e.Size, e.Kind, e.Partial})
		require.FileExists(t, e.Path)
	}
	require.Equal(t, []row{
		{ggufRepo, "Llama-3.2-1B-Instruct-Q4_K_M.gguf", 5, KindOther, true},
		{ggufRepo, "Llama-3.2-1B-Instruct-Q8_0.gguf", 500_000, KindOther, false}, // payloads, not GGUF
		{ggufRepo, "Llama-3.2-1B-Instruct-f16.gguf", 70_000, KindOther, false},
		{"karpathy/tinyllamas", "stories15M.bin", 28, KindCheckpoint, false},
	}, rows)

	_, err = Remove(ggufRepo+":Q2_K", opts)
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, ggufRepo+":Q2_K is not in the cache")

	// A file being downloaded stays.
	unlock, ok, err := tryLock(filepath.Join(repoDir, "Llama-3.2-1B-Instruct-Q8_0.gguf.lock"))
	require.NoError(t, err)
	require.True(t, ok)
	_, err = Remove(ggufRepo+":Q8_0", opts)
	require.ErrorContains(t, err, ggufRepo+"/Llama-3.2-1B-Instruct-Q8_0.gguf is being downloaded")
	unlock()

	removed, err := Remove(ggufRepo+":q8_0", opts)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(repoDir, "Llama-3.2-1B-Instruct-Q8_0.gguf")}, removed)
	require.NoFileExists(t, filepath.Join(repoDir, ".tags", "Q8_0"))
	require.FileExists(t, filepath.Join(repoDir, ".tags", "F16"))

	removed, err = Remove(ggufRepo, opts) // the rest, the partial download too
	require.NoError(t, err)
	require.Len(t, removed, 2)
	require.NoDirExists(t, repoDir)

	removed, err = Remove("karpathy/tinyllamas/stories15M.bin", opts)
	require.NoError(t, err)
	require.Len(t, removed, 1)
	entries, err = List(opts)
	require.NoError(t, err)
	require.Empty(t, entries)
}

func TestListEmpty(t *testing.T) {
	entries, err := List(Options{CacheDir: filepath.Join(t.TempDir(), "none")})
	require.NoError(t, err)
	require.Empty(t, entries)
}

// checkpointHeader is the 28-byte header of stories15M.bin.
func checkpointHeader() []byte {
	b := make([]byte, 28)
	for i, v := range []int32{288, 768, 6, 6, 6, 32000, 256} {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return b
}

func TestKindOf(t *testing.T) {
	tok := make([]byte, 28)
	binary.LittleEndian.PutUint32(tok[0:], 27) // max_token_length
	binary.LittleEndian.PutUint32(tok[4:], 0)  // the score of <unk>
	binary.LittleEndian.PutUint32(tok[8:], 5)  // its length
	copy(tok[12:], "<unk>")
	classifier := checkpointHeader()
	binary.LittleEndian.PutUint32(classifier[20:], uint32(0xffffffff-32000+1)) // vocab -32000
	for _, tc := range []struct {
		head []byte
		want Kind
	}{
		{[]byte("GGUF\x03\x00\x00\x00"), KindGGUF},
		{[]byte("24ka\x02\x00\x00\x00"), KindCheckpoint},
		{checkpointHeader(), KindCheckpoint},
		{classifier, KindCheckpoint},
		{tok, KindTokenizer},
		{[]byte("# README\nsome text here, long enough"), KindOther},
		{[]byte("GG"), KindOther},
		{nil, KindOther},
	} {
		require.Equal(t, tc.want, kindOf(tc.head), "%q", tc.head)
	}
	// The real files, where the fixtures are.
	for name, want := range map[string]Kind{
		"stories260K.bin":           KindCheckpoint,
		"stories260K-q80.bin":       KindCheckpoint,
		"tok512.bin":                KindTokenizer,
		"tokenizer.bin":             KindTokenizer,
		"gguf/stories260K-f32.gguf": KindGGUF,
	} {
		p := filepath.Join("..", "testdata", name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		require.Equal(t, want, KindOf(p), name)
	}
	require.Equal(t, KindOther, KindOf(filepath.Join(t.TempDir(), "missing")))
	require.Equal(t, "llama2.c checkpoint", KindCheckpoint.String())
}

func FuzzKindOf(f *testing.F) {
	f.Add(checkpointHeader())
	f.Add([]byte("GGUF"))
	f.Fuzz(func(t *testing.T, head []byte) { _ = kindOf(head).String() })
}

// llama2.c's tokenizer comes from Options.TokenizerURL, checked against
// its pinned SHA-256; one beside a checkpoint wins.
func TestTokenizer(t *testing.T) {
	h := newFakeHub(t)
	real := payload(5000, 7)
	defer func(f remoteFile) { llama2cTokenizer = f }(llama2cTokenizer)
	llama2cTokenizer = remoteFile{Path: "tokenizer.bin", Size: int64(len(real)), SHA256: sha256Hex(real)}
	h.add("karpathy/llama2.c", "tokenizer.bin", &fakeFile{data: real})
	h.add("someone/mirror", "tokenizer.bin", &fakeFile{data: payload(5000, 8)})
	opts := h.options(t)

	opts.TokenizerURL = h.api.URL + "/someone/mirror/resolve/main/tokenizer.bin"
	_, err := Tokenizer(context.Background(), opts)
	require.ErrorIs(t, err, ErrChecksum)
	require.ErrorContains(t, err, opts.TokenizerURL)

	opts.TokenizerURL = h.api.URL + "/nowhere/x/resolve/main/tokenizer.bin"
	_, err = Tokenizer(context.Background(), opts)
	require.ErrorContains(t, err, opts.TokenizerURL+": 401 Unauthorized")

	t.Setenv("LLAMA2_TOKENIZER_URL", h.api.URL+"/karpathy/llama2.c/resolve/main/tokenizer.bin")
	opts.TokenizerURL = ""
	path, err := Tokenizer(context.Background(), opts)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(opts.CacheDir, "llama2.c", "tokenizer.bin"), path)
	got, _ := os.ReadFile(path)
	require.Equal(t, real, got)

	dir := t.TempDir()
	ckpt := filepath.Join(dir, "model.bin")
	p, err := TokenizerFor(context.Background(), ckpt, opts)
	require.NoError(t, err)
	require.Equal(t, path, p)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.bin"), []byte("mine"), 0o644))
	p, err = TokenizerFor(context.Background(), ckpt, opts)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "tokenizer.bin"), p)

	entries, err := List(opts)
	require.NoError(t, err)
	require.Equal(t, []Entry{{File: "tokenizer.bin", Path: path, Size: 5000, Kind: KindTokenizer}}, entries)
}
