package hub

// A fake Hugging Face: the tree listing, resolve URLs that redirect files
// in LFS to a second server (another host, as Hugging Face's storage is),
// HEAD with X-Linked-Etag and X-Linked-Size, Range requests (http.ServeContent),
// gated repositories, Hugging Face's X-Error-Code headers, and hooks to
// inject faults.

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeFile struct {
	data []byte
	lfs  bool // in Git LFS: resolve redirects to the storage server
	// sha256, if set, is what the hub announces instead of the true one.
	sha256 string
}

type fakeRepo struct {
	files map[string]*fakeFile
	gated bool
}

type fakeHub struct {
	api, cdn *httptest.Server
	token    string // the token that opens gated repositories
	pageSize int    // entries per page of the listing (0: all)

	mu    sync.Mutex
	repos map[string]*fakeRepo
	log   []string // "HOST-KIND METHOD PATH RANGE AUTH" per request
	// blob, if set, serves the storage's GET of a file instead of the
	// default (which serves ranges); it returns false to fall through.
	blob func(w http.ResponseWriter, r *http.Request, f *fakeFile) bool
}

func newFakeHub(t testing.TB) *fakeHub {
	h := &fakeHub{repos: map[string]*fakeRepo{}}
	h.api = httptest.NewServer(http.HandlerFunc(h.serveAPI))
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	t.Cleanup(func() {
		h.api.CloseClientConnections()
		h.cdn.CloseClientConnections()
		h.api.Close()
		h.cdn.Close()
	})
	return h
}

// add puts a file into a repository (made if missing).
func (h *fakeHub) add(repo, p string, f *fakeFile) *fakeFile {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.repos[repo]
	if r == nil {
		r = &fakeRepo{files: map[string]*fakeFile{}}
		h.repos[repo] = r
	}
	r.files[p] = f
	return f
}

func (h *fakeHub) gate(repo string) {
	h.mu.Lock()
	h.repos[repo].gated = true
	h.mu.Unlock()
}

// requests returns the log and empties it.
func (h *fakeHub) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.log
	h.log = nil
	return l
}

// peek returns the log.
func (h *fakeHub) peek() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

func (h *fakeHub) record(kind string, r *http.Request) {
	h.mu.Lock()
	h.log = append(h.log, fmt.Sprintf("%s %s %s range=%s auth=%s", kind, r.Method, r.URL.Path, r.Header.Get("Range"), r.Header.Get("Authorization")))
	h.mu.Unlock()
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func gitOID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func (f *fakeFile) announcedSHA() string {
	if f.sha256 != "" {
		return f.sha256
	}
	return sha256Hex(f.data)
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Error-Code", code)
	w.Header().Set("X-Error-Message", msg)
	http.Error(w, msg, status)
}

func (h *fakeHub) serveAPI(w http.ResponseWriter, r *http.Request) {
	h.record("api", r)
	authed := r.Header.Get("Authorization") != ""
	// /api/models/OWNER/NAME/tree/main
	if rest, ok := strings.CutPrefix(r.URL.Path, "/api/models/"); ok {
		parts := strings.Split(rest, "/")
		if len(parts) != 4 || parts[2] != "tree" || parts[3] != "main" {
			http.NotFound(w, r)
			return
		}
		h.mu.Lock()
		repo := h.repos[parts[0]+"/"+parts[1]]
		h.mu.Unlock()
		if repo == nil {
			status := http.StatusUnauthorized // Hugging Face's answer to an anonymous caller
			if authed {
				status = http.StatusNotFound
			}
			hubError(w, status, "RepoNotFound", "Repository not found")
			return
		}
		h.serveTree(w, r, repo)
		return
	}
	// /OWNER/NAME/resolve/main/PATH
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 5)
	if len(parts) != 5 || parts[2] != "resolve" || parts[3] != "main" {
		http.NotFound(w, r)
		return
	}
	h.mu.Lock()
	repo := h.repos[parts[0]+"/"+parts[1]]
	h.mu.Unlock()
	switch {
	case repo == nil && !authed:
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found")
		return
	case repo == nil:
		hubError(w, http.StatusNotFound, "RepoNotFound", "Repository not found")
		return
	case repo.gated && !authed:
		hubError(w, http.StatusUnauthorized, "GatedRepo", "Access to this model is restricted: you must be authenticated")
		return
	case repo.gated && r.Header.Get("Authorization") != "Bearer "+h.token:
		hubError(w, http.StatusForbidden, "GatedRepo", "Access to this model is restricted and you are not in the authorized list")
		return
	}
	f := repo.files[parts[4]]
	if f == nil {
		hubError(w, http.StatusNotFound, "EntryNotFound", "Entry not found")
		return
	}
	if f.lfs {
		w.Header().Set("X-Linked-Etag", `"`+f.announcedSHA()+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.data)))
		w.Header().Set("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
		http.Redirect(w, r, h.cdn.URL+"/blobs/"+sha256Hex(f.data)+"?file="+path.Base(parts[4]), http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+gitOID(f.data)+`"`)
	http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(f.data)))
}

func (h *fakeHub) serveTree(w http.ResponseWriter, r *http.Request, repo *fakeRepo) {
	type lfs struct {
		OID         string `json:"oid"`
		Size        int    `json:"size"`
		PointerSize int    `json:"pointerSize"`
	}
	type entry struct {
		Type string `json:"type"`
		OID  string `json:"oid"`
		Size int    `json:"size"`
		Path string `json:"path"`
		LFS  *lfs   `json:"lfs,omitempty"`
	}
	h.mu.Lock()
	var entries []entry
	dirs := map[string]bool{}
	for p, f := range repo.files {
		e := entry{Type: "file", Size: len(f.data), Path: p, OID: gitOID(f.data)}
		if f.lfs {
			e.OID = gitOID([]byte("version https://git-lfs.github.com/spec/v1\n" + f.announcedSHA()))
			e.LFS = &lfs{OID: f.announcedSHA(), Size: len(f.data), PointerSize: 134}
		}
		entries = append(entries, e)
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	pageSize := h.pageSize
	h.mu.Unlock()
	for d := range dirs {
		entries = append(entries, entry{Type: "directory", OID: gitOID([]byte(d)), Path: d})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.Path, b.Path) })
	if pageSize > 0 {
		cursor, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		end := min(cursor+pageSize, len(entries))
		if end < len(entries) {
			q := r.URL.Query()
			q.Set("cursor", strconv.Itoa(end))
			w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, q.Encode()))
		}
		entries = entries[min(cursor, len(entries)):end]
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(entries)
}

// serveCDN is the storage host: GET /blobs/SHA256, ranges and all.
func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	h.record("cdn", r)
	sum := strings.TrimPrefix(r.URL.Path, "/blobs/")
	h.mu.Lock()
	var f *fakeFile
	for _, repo := range h.repos {
		for _, ff := range repo.files {
			if sha256Hex(ff.data) == sum {
				f = ff
			}
		}
	}
	blob := h.blob
	h.mu.Unlock()
	if f == nil {
		http.NotFound(w, r)
		return
	}
	if blob != nil && blob(w, r, f) {
		return
	}
	w.Header().Set("ETag", `"`+sum+`"`)
	http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(f.data)))
}

// options are the Options of a pull from h into a fresh cache.
func (h *fakeHub) options(t testing.TB) Options {
	return Options{Endpoint: h.api.URL, CacheDir: t.TempDir(), TokenizerURL: h.api.URL + "/none"}
}

// payload is n bytes of a repeatable pattern.
func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>9)
	}
	return b
}
