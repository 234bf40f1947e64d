package hub

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Ref names a model on the hub: a repository and either a tag (a
// quantization such as Q4_K_M, picked from the repository's GGUF files) or
// a path in the repository.
type Ref struct {
	Owner, Name string
	// Tag is the quantization asked for ("" with a File, and for the
	// default pick: Q4_K_M, else the only GGUF file).
	Tag string
	// File is a path in the repository, slash-separated ("" for a pick by
	// tag).
	File string
}

// Repo is "owner/name".
func (r Ref) Repo() string { return r.Owner + "/" + r.Name }

// String is the reference as ParseRef reads it.
func (r Ref) String() string {
	switch {
	case r.File != "":
		return r.Repo() + "/" + r.File
	case r.Tag != "":
		return r.Repo() + ":" + r.Tag
	}
	return r.Repo()
}

// Hugging Face's names: letters, digits, '-', '_' and '.', not starting
// with '-' or '.' (and at most 96 characters, checked apart).
var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)
	tagRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)
)

const (
	maxNameLen = 96
	maxTagLen  = 64
	maxPathLen = 1024
)

// ParseRef reads REPO[:TAG] (bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M)
// or REPO/PATH (karpathy/tinyllamas/stories15M.bin). The error wraps
// ErrBadRef and says what is wrong.
func ParseRef(s string) (Ref, error) {
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("%w %q: %s (want OWNER/REPO[:TAG] or OWNER/REPO/PATH, e.g. karpathy/tinyllamas/stories15M.bin)", ErrBadRef, s, why)
	}
	if len(s) > 2*maxNameLen+maxPathLen {
		return bad("too long")
	}
	var r Ref
	rest := s
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		rest, r.Tag = rest[:i], rest[i+1:]
		if len(r.Tag) > maxTagLen || !tagRE.MatchString(r.Tag) {
			return bad("a tag is letters, digits, '.', '_' and '-' after the colon")
		}
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) < 2 {
		return bad("no repository")
	}
	r.Owner, r.Name = parts[0], parts[1]
	for _, n := range parts[:2] {
		if len(n) > maxNameLen || !nameRE.MatchString(n) || strings.Contains(n, "..") {
			return bad(fmt.Sprintf("%q is not a repository name", n))
		}
	}
	if len(parts) == 3 {
		if r.Tag != "" {
			return bad("a path and a tag both")
		}
		if err := checkPath(parts[2]); err != nil {
			return bad(err.Error())
		}
		r.File = parts[2]
	}
	return r, nil
}

// checkPath accepts a slash-separated path inside a repository that is safe
// to join to a directory: no empty, "." or ".." element, no backslash,
// colon or control character, not too long.
func checkPath(p string) error {
	if p == "" || len(p) > maxPathLen {
		return fmt.Errorf("path %q: empty or too long", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("path %q: empty, . or .. element", p)
		}
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || c == '\\' || c == ':' {
			return fmt.Errorf("path %q: a control character, backslash or colon", p)
		}
	}
	return nil
}

// isGGUF says whether a repository path names a GGUF model file (not a
// multimodal projector, which llama.cpp's repositories put beside them).
func isGGUF(p string) bool {
	base := strings.ToLower(path.Base(p))
	return strings.HasSuffix(base, ".gguf") && !strings.Contains(base, "mmproj")
}

// splitRE matches llama.cpp's split files, model-Q4_K_M-00001-of-00003.gguf.
var splitRE = regexp.MustCompile(`(?i)-(\d{5})-of-(\d{5})$`)

// stem is a GGUF file's name without the directory, ".gguf" and a split
// suffix; split is the "-0000N-of-0000M" it had, if any.
func stem(p string) (s, split string) {
	s = path.Base(p)
	s = s[:len(s)-len(".gguf")]
	if m := splitRE.FindStringIndex(s); m != nil {
		s, split = s[:m[0]], s[m[0]:]
	}
	return s, split
}

// fileTag is the tag a GGUF file's name carries: what follows its last '-'
// or '.' (Llama-3.2-1B-Instruct-Q4_K_M.gguf: Q4_K_M;
// tinyllama-1.1b-chat-v1.0.Q8_0.gguf: Q8_0).
func fileTag(p string) string {
	s, _ := stem(p)
	return s[strings.LastIndexAny(s, "-.")+1:]
}

// carriesTag says whether a GGUF file's name ends with the tag after a '-'
// or '.', case-insensitively (so UD-Q4_K_XL finds model-UD-Q4_K_XL.gguf,
// and Q4_K does not find model-Q4_K_M.gguf).
func carriesTag(p, tag string) bool {
	s, _ := stem(p)
	s, tag = strings.ToLower(s), strings.ToLower(tag)
	return s == tag || strings.HasSuffix(s, "-"+tag) || strings.HasSuffix(s, "."+tag)
}

// DefaultTag is the quantization picked when a reference names none.
const DefaultTag = "Q4_K_M"

// pick chooses the file a reference without a path names among a
// repository's files: the GGUF file carrying the tag, or without a tag
// the one carrying DefaultTag, else the only GGUF file. Errors wrap
// ErrNoMatch (none; they list the tags there are) or ErrAmbiguous
// (several: they list the files).
func pick(r Ref, files []remoteFile) (remoteFile, error) {
	var ggufs []remoteFile
	var others []string
	for _, f := range files {
		if !isGGUF(f.Path) {
			others = append(others, f.Path)
			continue
		}
		if _, split := stem(f.Path); split != "" && !strings.HasPrefix(split, "-00001") {
			continue // one entry per split model: its first part
		}
		ggufs = append(ggufs, f)
	}
	if len(ggufs) == 0 {
		if len(others) > 8 {
			others = append(others[:8], "...")
		}
		return remoteFile{}, fmt.Errorf("%w: %s has no GGUF file; name a file as %s/PATH (files: %s)",
			ErrNoMatch, r.Repo(), r.Repo(), strings.Join(others, ", "))
	}
	var tags []string
	for _, f := range ggufs {
		tags = append(tags, fileTag(f.Path))
	}
	slices.Sort(tags)
	tags = slices.Compact(tags)
	tagList := strings.Join(tags, ", ")

	tag := r.Tag
	if tag == "" {
		tag = DefaultTag
	}
	var match []remoteFile
	for _, f := range ggufs {
		if carriesTag(f.Path, tag) {
			match = append(match, f)
		}
	}
	if r.Tag == "" && len(match) == 0 && len(ggufs) == 1 {
		match = ggufs
	}
	switch {
	case len(match) == 0 && r.Tag == "":
		return remoteFile{}, fmt.Errorf("%w: %s has %d GGUF files and none is %s: pick one as %s:TAG (tags: %s)",
			ErrAmbiguous, r.Repo(), len(ggufs), DefaultTag, r.Repo(), tagList)
	case len(match) == 0:
		return remoteFile{}, fmt.Errorf("%w: %s has no GGUF file for tag %s (tags: %s)", ErrNoMatch, r.Repo(), r.Tag, tagList)
	case len(match) > 1:
		var names []string
		for _, f := range match {
			names = append(names, f.Path)
		}
		return remoteFile{}, fmt.Errorf("%w: tag %s of %s matches %d files: %s; name one as %s/PATH (tags: %s)",
			ErrAmbiguous, tag, r.Repo(), len(match), strings.Join(names, ", "), r.Repo(), tagList)
	}
	if _, split := stem(match[0].Path); split != "" {
		return remoteFile{}, fmt.Errorf("%w: %s/%s is split into several files (%s), which llama2 cannot load",
			ErrUnsupported, r.Repo(), match[0].Path, strings.TrimPrefix(split, "-"))
	}
	return match[0], nil
}
