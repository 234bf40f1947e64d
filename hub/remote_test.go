package hub

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseTree(t *testing.T) {
	got, err := parseTree([]byte(`[
		{"type":"directory","oid":"1111111111111111111111111111111111111111","size":0,"path":"sub"},
		{"type":"file","oid":"2222222222222222222222222222222222222222","size":135,"path":"sub/m-Q8_0.gguf",
		 "lfs":{"oid":"` + strings.ToUpper(sha) + `","size":123456789012,"pointerSize":135}},
		{"type":"file","oid":"3333333333333333333333333333333333333333","size":10,"path":"README.md","extra":true}
	]`))
	require.NoError(t, err)
	require.Equal(t, []remoteFile{
		{Path: "sub/m-Q8_0.gguf", Size: 123456789012, SHA256: sha},
		{Path: "README.md", Size: 10, GitOID: "3333333333333333333333333333333333333333"},
	}, got)

	for data, why := range map[string]string{
		`{"error":"x"}`: "not a JSON array",
		`[{"type":"file","oid":"` + sha[:40] + `","size":1,"path":"../x"}]`:                                    `entry 0: path "../x"`,
		`[{"type":"file","oid":"` + sha[:40] + `","size":1,"path":"/etc/passwd"}]`:                             "entry 0: path",
		`[{"type":"file","oid":"xyz","size":1,"path":"a"}]`:                                                    `entry 0 (a): oid "xyz" is not a Git object id`,
		`[{"type":"file","oid":"` + sha[:40] + `","size":1,"path":"a","lfs":{"oid":"abc","size":1}}]`:          `lfs.oid "abc" is not a SHA-256`,
		`[{"type":"file","oid":"` + sha[:40] + `","size":1,"path":"a","lfs":{"oid":"` + sha + `","size":-1}}]`: "size -1 is negative",
	} {
		_, err := parseTree([]byte(data))
		require.ErrorContains(t, err, why, data)
	}
}

func FuzzParseTree(f *testing.F) {
	f.Add([]byte(`[{"type":"file","oid":"` + sha[:40] + `","size":1,"path":"a/b.gguf","lfs":{"oid":"` + sha + `","size":7}}]`))
	f.Add([]byte(`[{"type":"directory","path":"x"},{"type":"file","oid":"` + sha[:40] + `","size":3,"path":"README.md"}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := parseTree(data)
		if err != nil {
			return
		}
		for _, f := range files {
			if !filepath.IsLocal(filepath.FromSlash(f.Path)) || checkPath(f.Path) != nil {
				t.Fatalf("unsafe path %q", f.Path)
			}
			if f.Size < 0 || (f.SHA256 == "") == (f.GitOID == "") || (f.SHA256 != "" && !isHex(f.SHA256, 64)) ||
				(f.GitOID != "" && !isHex(f.GitOID, 40)) {
				t.Fatalf("bad entry %+v", f)
			}
			_, _ = pick(Ref{Owner: "o", Name: "r"}, files)
		}
	})
}

func TestFileFromHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("X-Linked-Etag", `"`+strings.ToUpper(sha)+`"`)
	h.Set("X-Linked-Size", "1234")
	h.Set("Content-Length", "99")
	f, err := fileFromHeaders("m.gguf", h)
	require.NoError(t, err)
	require.Equal(t, remoteFile{Path: "m.gguf", Size: 1234, SHA256: sha}, f)

	h = http.Header{}
	h.Set("ETag", `W/"`+sha[:40]+`"`)
	h.Set("Content-Length", "10")
	f, err = fileFromHeaders("README.md", h)
	require.NoError(t, err)
	require.Equal(t, remoteFile{Path: "README.md", Size: 10, GitOID: sha[:40]}, f)

	h.Set("ETag", `"abc"`)
	_, err = fileFromHeaders("README.md", h)
	require.ErrorIs(t, err, ErrChecksum)
	require.ErrorContains(t, err, "README.md: the server sent no checksum")
	h.Del("Content-Length")
	_, err = fileFromHeaders("README.md", h)
	require.ErrorContains(t, err, "README.md: the server sent no size")
}

func TestParseContentRange(t *testing.T) {
	for s, want := range map[string][3]int64{ // start, total, ok
		"bytes 100-199/200": {100, 200, 1},
		"bytes 0-0/*":       {0, -1, 1},
		"bytes 100-99/200":  {0, 0, 0},
		"bytes 100-199/150": {0, 0, 0},
		"bytes -1-5/10":     {0, 0, 0},
		"bits 1-2/3":        {0, 0, 0},
		"bytes 1-2":         {0, 0, 0},
	} {
		start, total, ok := parseContentRange(s)
		if want[2] == 0 {
			require.False(t, ok, s)
			continue
		}
		require.True(t, ok, s)
		require.Equal(t, want[0], start, s)
		require.Equal(t, want[1], total, s)
	}
}

func FuzzParseContentRange(f *testing.F) {
	f.Add("bytes 100-199/200")
	f.Add("bytes 0-0/*")
	f.Fuzz(func(t *testing.T, s string) {
		start, total, ok := parseContentRange(s)
		if ok && (start < 0 || (total != -1 && total <= start)) {
			t.Fatalf("%q: start %d total %d", s, start, total)
		}
	})
}

func TestFormatBytes(t *testing.T) {
	require.Equal(t, "512 B", FormatBytes(512))
	require.Equal(t, "1.0 KiB", FormatBytes(1024))
	require.Equal(t, "57.9 MiB", FormatBytes(60_702_080))
	require.Equal(t, "4.1 GiB", FormatBytes(4_400_000_000))
}
