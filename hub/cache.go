package hub

// The cache's layout, under Options.CacheDir:
//
//	hub/OWNER/NAME/PATH                  a pulled file, verified
//	hub/OWNER/NAME/PATH.SUM.partial      a download under way or interrupted (SUM: the
//	                                     first 16 hex digits of its checksum, so that a
//	                                     file changed on the hub starts afresh)
//	hub/OWNER/NAME/PATH.lock             the lock of a download under way
//	hub/OWNER/NAME/.tags/TAG             the PATH that OWNER/NAME:TAG picked (@default: no tag)
//	llama2.c/tokenizer.bin               llama2.c's tokenizer

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

func (c *client) repoDir(r Ref) string {
	return filepath.Join(c.cacheDir, "hub", r.Owner, r.Name)
}

// repoPath is where r.File goes.
func (c *client) repoPath(r Ref) string {
	return filepath.Join(c.repoDir(r), filepath.FromSlash(r.File))
}

func (c *client) tokenizerPath() string {
	return filepath.Join(c.cacheDir, "llama2.c", "tokenizer.bin")
}

const tagsDir = ".tags"

func (c *client) tagPath(r Ref) string {
	key := strings.ToUpper(r.Tag)
	if key == "" {
		key = "@default"
	}
	return filepath.Join(c.repoDir(r), tagsDir, key)
}

// cached is the path of what r names if it is in the cache: r.File, or
// the file its tag picked the last time.
func (c *client) cached(r Ref) (string, bool) {
	if r.File == "" {
		data, err := os.ReadFile(c.tagPath(r))
		if err != nil {
			return "", false
		}
		r.File = strings.TrimSpace(string(data))
		if checkPath(r.File) != nil {
			return "", false
		}
	}
	dest := c.repoPath(r)
	return dest, fileExists(dest)
}

// saveTag records that r's tag picked file.
func (c *client) saveTag(r Ref, file string) error {
	p := c.tagPath(r)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(file + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Entry is a file in the cache.
type Entry struct {
	// Repo is "owner/name", "" for llama2.c's tokenizer.
	Repo string
	// File is the path in the repository.
	File string
	// Path is where it is.
	Path string
	// Size is its size (for a partial download, what it has so far).
	Size int64
	// Kind is what the file holds (KindOther for a partial download).
	Kind Kind
	// Partial: a download under way or interrupted, which the next pull
	// resumes.
	Partial bool
}

// partialRE is the suffix of a partial download's name.
var partialRE = regexp.MustCompile(`\.[0-9a-f]{16}\.partial$`)

// List returns the files in the cache, by repository and path.
func List(opts Options) ([]Entry, error) {
	c, err := newClient(opts)
	if err != nil {
		return nil, err
	}
	return c.entries(filepath.Join(c.cacheDir, "hub"))
}

// entries lists the cache under root (the hub directory or one
// repository's), with llama2.c's tokenizer when root is the hub directory.
func (c *client) entries(root string) ([]Entry, error) {
	hub := filepath.Join(c.cacheDir, "hub")
	var out []Entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			if d.Name() == tagsDir {
				return fs.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(hub, p)
		if err != nil {
			return err
		}
		parts := strings.SplitN(filepath.ToSlash(rel), "/", 3)
		if len(parts) < 3 || strings.HasSuffix(p, ".lock") || !d.Type().IsRegular() {
			return nil
		}
		e := Entry{Repo: parts[0] + "/" + parts[1], File: parts[2], Path: p}
		if loc := partialRE.FindStringIndex(e.File); loc != nil {
			e.File, e.Partial = e.File[:loc[0]], true
		}
		if fi, err := d.Info(); err == nil {
			e.Size = fi.Size()
		}
		if !e.Partial {
			e.Kind = KindOf(p)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the cache %s: %w", c.cacheDir, err)
	}
	if root == hub {
		if fi, err := os.Stat(c.tokenizerPath()); err == nil {
			out = append(out, Entry{File: "tokenizer.bin", Path: c.tokenizerPath(), Size: fi.Size(), Kind: KindTokenizer})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Repo, b.Repo), cmp.Compare(a.File, b.File), cmp.Compare(a.Path, b.Path))
	})
	return out, nil
}

// Remove deletes what ref names from the cache, with its partial
// downloads: REPO/PATH that file, REPO:TAG the cached GGUF file carrying
// the tag, REPO everything of the repository. It returns the paths it
// removed; nothing to remove is ErrNotFound, a file being downloaded an
// error.
func Remove(ref string, opts Options) ([]string, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	c, err := newClient(opts)
	if err != nil {
		return nil, err
	}
	all, err := c.entries(c.repoDir(r))
	if err != nil {
		return nil, err
	}
	var doomed []Entry
	for _, e := range all {
		switch {
		case r.File != "" && e.File != r.File:
		case r.Tag != "" && !(isGGUF(e.File) && carriesTag(e.File, r.Tag)):
		default:
			doomed = append(doomed, e)
		}
	}
	if r.Tag != "" {
		var files []string
		for _, e := range doomed {
			files = append(files, e.File)
		}
		if files = slices.Compact(files); len(files) > 1 {
			return nil, fmt.Errorf("%w: tag %s of %s matches %d cached files: %s; name one as %s/PATH",
				ErrAmbiguous, r.Tag, r.Repo(), len(files), strings.Join(files, ", "), r.Repo())
		}
	}
	if len(doomed) == 0 {
		return nil, fmt.Errorf("%w: %s is not in the cache %s", ErrNotFound, r, c.cacheDir)
	}
	var removed []string
	for _, e := range doomed {
		dest := filepath.Join(c.repoDir(r), filepath.FromSlash(e.File))
		unlock, ok, err := tryLock(dest + ".lock")
		if err != nil {
			return removed, err
		}
		if !ok {
			return removed, fmt.Errorf("%s/%s is being downloaded; remove it when that is done", r.Repo(), e.File)
		}
		err = os.Remove(e.Path)
		unlock()
		if err != nil {
			return removed, err
		}
		removed = append(removed, e.Path)
	}
	c.pruneTags(r)
	// Empty directories go too, up to the owner's.
	for _, e := range doomed {
		dir := filepath.Dir(e.Path)
		for dir != filepath.Join(c.cacheDir, "hub") && os.Remove(dir) == nil {
			dir = filepath.Dir(dir)
		}
	}
	return removed, nil
}

// pruneTags removes the tag records of r's repository whose file is gone.
func (c *client) pruneTags(r Ref) {
	dir := filepath.Join(c.repoDir(r), tagsDir)
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		data, err := os.ReadFile(filepath.Join(dir, de.Name()))
		file := strings.TrimSpace(string(data))
		if err != nil || checkPath(file) != nil || !fileExists(c.repoPath(Ref{Owner: r.Owner, Name: r.Name, File: file})) {
			os.Remove(filepath.Join(dir, de.Name()))
		}
	}
	os.Remove(dir) // if empty
	os.Remove(c.repoDir(r))
}

// Kind is what a file holds, as its first bytes tell.
type Kind int

// The kinds of file that KindOf tells apart.
const (
	KindOther      Kind = iota // none of the below
	KindGGUF                   // a GGUF file
	KindCheckpoint             // a llama2.c checkpoint (legacy, version 1 or 2)
	KindTokenizer              // a llama2.c tokenizer (tokenizer.bin)
)

func (k Kind) String() string {
	switch k {
	case KindGGUF:
		return "GGUF"
	case KindCheckpoint:
		return "llama2.c checkpoint"
	case KindTokenizer:
		return "llama2.c tokenizer"
	}
	return "other"
}

// KindOf reads the start of a file to tell its kind; a file it cannot
// read is KindOther.
func KindOf(path string) Kind {
	f, err := os.Open(path)
	if err != nil {
		return KindOther
	}
	defer f.Close()
	var head [28]byte
	n, _ := io.ReadFull(f, head[:])
	return kindOf(head[:n])
}

// kindOf tells a file's kind from its first 28 bytes.
func kindOf(head []byte) Kind {
	if len(head) < 4 {
		return KindOther
	}
	switch string(head[:4]) {
	case "GGUF":
		return KindGGUF
	case "24ka": // 0x616b3432 little-endian: llama2.c's export.py --version 1 and 2
		return KindCheckpoint
	}
	if len(head) < 28 {
		return KindOther
	}
	var v [7]int32
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(head[4*i:]))
	}
	// A legacy checkpoint: dim, hidden_dim, n_layers, n_heads, n_kv_heads,
	// vocab_size (negative: a separate classifier), seq_len.
	dim, hidden, layers, heads, kv, vocab, seq := v[0], v[1], v[2], v[3], v[4], v[5], v[6]
	if dim > 0 && hidden > 0 && layers > 0 && heads > 0 && kv > 0 && kv <= heads && heads%kv == 0 &&
		dim%heads == 0 && vocab != 0 && seq > 0 && dim < 1<<20 && hidden < 1<<22 && layers < 1<<12 {
		return KindCheckpoint
	}
	// A tokenizer: max_token_length, then the first token's score and
	// length (at most max_token_length).
	if maxLen, n := v[0], v[2]; maxLen > 0 && maxLen <= 1<<16 && n > 0 && n <= maxLen {
		return KindTokenizer
	}
	return KindOther
}

// CacheDir is the cache's directory that opts name (Options.CacheDir).
func CacheDir(opts Options) (string, error) {
	c, err := newClient(opts)
	if err != nil {
		return "", err
	}
	return c.cacheDir, nil
}

// InCache says whether path (symbolic links followed) is a file in the
// cache.
func InCache(path string, opts Options) bool {
	dir, err := CacheDir(opts)
	if err != nil {
		return false
	}
	dir, err1 := filepath.EvalSymlinks(dir)
	path, err2 := filepath.EvalSymlinks(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && filepath.IsLocal(rel)
}
