package hub

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Ref
	}{
		{"bartowski/Llama-3.2-1B-Instruct-GGUF", Ref{Owner: "bartowski", Name: "Llama-3.2-1B-Instruct-GGUF"}},
		{"bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", Ref{Owner: "bartowski", Name: "Llama-3.2-1B-Instruct-GGUF", Tag: "Q4_K_M"}},
		{"unsloth/x:UD-Q4_K_XL", Ref{Owner: "unsloth", Name: "x", Tag: "UD-Q4_K_XL"}},
		{"karpathy/tinyllamas/stories15M.bin", Ref{Owner: "karpathy", Name: "tinyllamas", File: "stories15M.bin"}},
		{"karpathy/tinyllamas/stories260K/tok512.bin", Ref{Owner: "karpathy", Name: "tinyllamas", File: "stories260K/tok512.bin"}},
	} {
		got, err := ParseRef(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
		require.Equal(t, tc.in, got.String())
	}
	for in, why := range map[string]string{
		"":                     "no repository",
		"stories15M.bin":       "no repository",
		"a/b:":                 "a tag is",
		"a/b:Q4 K":             "a tag is",
		"a/b/c:Q4_0":           "a path and a tag both",
		"a/../b":               `".." is not a repository name`,
		"-a/b":                 `"-a" is not a repository name`,
		"a/b/../../etc/passwd": "empty, . or .. element",
		"a/b/c//d":             "empty, . or .. element",
		"a/b/c/":               "empty, . or .. element",
		`a/b/c\d`:              "backslash",
		"a/b/c\x00":            "control character",
		"/a/b":                 `"" is not a repository name`,
	} {
		_, err := ParseRef(in)
		require.ErrorIs(t, err, ErrBadRef, in)
		require.ErrorContains(t, err, why, in)
		require.ErrorContains(t, err, "OWNER/REPO[:TAG]", in)
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"a/b", "a/b:Q4_K_M", "a/b/c/d.gguf", "a/b/../c", "a/b:", "a//b", "a/b/c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		// What parses is printed back the same and stays inside the cache.
		if r.String() != s {
			t.Fatalf("%q parses to %+v, printed %q", s, r, r.String())
		}
		if r.File != "" && !filepath.IsLocal(filepath.FromSlash(r.File)) {
			t.Fatalf("%q: path %q leaves the repository's directory", s, r.File)
		}
		for _, n := range []string{r.Owner, r.Name} {
			if !filepath.IsLocal(n) || strings.ContainsAny(n, `/\`) {
				t.Fatalf("%q: name %q is not one path element", s, n)
			}
		}
	})
}

func TestFileTag(t *testing.T) {
	for name, tag := range map[string]string{
		"Llama-3.2-1B-Instruct-Q4_K_M.gguf":       "Q4_K_M",
		"tinyllama-1.1b-chat-v1.0.Q8_0.gguf":      "Q8_0",
		"sub/dir/model-f16.gguf":                  "f16",
		"model-UD-Q4_K_XL.gguf":                   "Q4_K_XL",
		"Q4_K_M/model-Q4_K_M-00001-of-00002.gguf": "Q4_K_M",
		"ggml-model-q4_0.gguf":                    "q4_0",
		"model.gguf":                              "model",
	} {
		require.Equal(t, tag, fileTag(name), name)
	}
	require.True(t, carriesTag("model-UD-Q4_K_XL.gguf", "ud-q4_k_xl"))
	require.True(t, carriesTag("model-UD-Q4_K_XL.gguf", "Q4_K_XL"))
	require.False(t, carriesTag("model-Q4_K_M.gguf", "Q4_K"))
	require.False(t, carriesTag("model-Q4_K_M.gguf", "K_M"))
}

func files(paths ...string) []remoteFile {
	var out []remoteFile
	for _, p := range paths {
		out = append(out, remoteFile{Path: p, Size: 1, SHA256: strings.Repeat("a", 64)})
	}
	return out
}

func TestPick(t *testing.T) {
	r := Ref{Owner: "o", Name: "r"}
	tagged := func(tag string) Ref { r := r; r.Tag = tag; return r }
	for _, tc := range []struct {
		ref   Ref
		files []remoteFile
		want  string
		err   error
		msg   string
	}{
		{r, files("README.md", "m-Q8_0.gguf", "m-Q4_K_M.gguf", "mmproj-m-Q4_K_M.gguf"), "m-Q4_K_M.gguf", nil, ""},
		{r, files("README.md", "m-Q8_0.gguf"), "m-Q8_0.gguf", nil, ""},
		{r, files("m-Q8_0.gguf", "m-f16.gguf"), "", ErrAmbiguous, "o/r has 2 GGUF files and none is Q4_K_M: pick one as o/r:TAG (tags: Q8_0, f16)"},
		{r, files("README.md", "stories15M.bin"), "", ErrNoMatch, "o/r has no GGUF file; name a file as o/r/PATH (files: README.md, stories15M.bin)"},
		{tagged("f16"), files("m-Q8_0.gguf", "m-F16.gguf"), "m-F16.gguf", nil, ""},
		{tagged("Q5_K_M"), files("m-Q8_0.gguf", "m-F16.gguf"), "", ErrNoMatch, "o/r has no GGUF file for tag Q5_K_M (tags: F16, Q8_0)"},
		{tagged("Q8_0"), files("a/m-Q8_0.gguf", "b/m.Q8_0.gguf"), "", ErrAmbiguous, "tag Q8_0 of o/r matches 2 files: a/m-Q8_0.gguf, b/m.Q8_0.gguf"},
		{tagged("Q8_0"), files("m-Q8_0-00001-of-00002.gguf", "m-Q8_0-00002-of-00002.gguf"), "", ErrUnsupported, "o/r/m-Q8_0-00001-of-00002.gguf is split into several files (00001-of-00002)"},
	} {
		got, err := pick(tc.ref, tc.files)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, tc.ref)
			require.ErrorContains(t, err, tc.msg, tc.ref)
			continue
		}
		require.NoError(t, err, tc.ref)
		require.Equal(t, tc.want, got.Path, tc.ref)
	}
}
