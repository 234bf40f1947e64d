package hub

// What the hub says about a repository's files: the tree listing
// (GET {endpoint}/api/models/{repo}/tree/main) and the headers of a
// resolve URL (HEAD {endpoint}/{repo}/resolve/main/{path}).

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// remoteFile is a file of a repository, with what verifies it.
type remoteFile struct {
	Path string
	Size int64
	// SHA256 is the hex SHA-256 of the content (files in Git LFS: every
	// model); GitOID the hex SHA-1 of the Git blob ("blob {size}\x00" and
	// the content: small files kept in Git itself). One of them is set.
	SHA256, GitOID string
}

// treeEntry is one element of the tree listing.
type treeEntry struct {
	Type string `json:"type"`
	Path string `json:"path"`
	Size int64  `json:"size"`
	OID  string `json:"oid"`
	LFS  *struct {
		OID  string `json:"oid"`
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// maxListingBytes bounds one page of a tree listing (a repository of
// 10,000 files lists in about 2 MB).
const maxListingBytes = 32 << 20

// maxListingPages bounds how many pages (of 1,000 entries on Hugging Face)
// a listing may follow.
const maxListingPages = 100

// parseTree reads one page of a tree listing: its files (directories are
// skipped), each with a safe path, a size and a checksum, or an error
// naming the entry and what is wrong with it.
func parseTree(data []byte) ([]remoteFile, error) {
	var entries []treeEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("not a JSON array of files: %w", err)
	}
	files := make([]remoteFile, 0, len(entries))
	for i, e := range entries {
		if e.Type != "file" {
			continue
		}
		if err := checkPath(e.Path); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		f := remoteFile{Path: e.Path, Size: e.Size}
		if e.LFS != nil {
			f.Size, f.SHA256 = e.LFS.Size, strings.ToLower(e.LFS.OID)
			if !isHex(f.SHA256, 64) {
				return nil, fmt.Errorf("entry %d (%s): lfs.oid %q is not a SHA-256", i, e.Path, e.LFS.OID)
			}
		} else {
			f.GitOID = strings.ToLower(e.OID)
			if !isHex(f.GitOID, 40) {
				return nil, fmt.Errorf("entry %d (%s): oid %q is not a Git object id", i, e.Path, e.OID)
			}
		}
		if f.Size < 0 {
			return nil, fmt.Errorf("entry %d (%s): size %d is negative", i, e.Path, f.Size)
		}
		files = append(files, f)
	}
	return files, nil
}

// isHex says whether s is n lowercase hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// list fetches a repository's tree listing, every page of it (Hugging Face
// pages by 1,000 entries, with a Link header to the next page).
func (c *client) list(ctx context.Context, r Ref) ([]remoteFile, error) {
	next := c.endpoint + "/api/models/" + r.Owner + "/" + r.Name + "/tree/main?recursive=true"
	var files []remoteFile
	for page := 0; next != ""; page++ {
		if page == maxListingPages {
			return nil, fmt.Errorf("listing %s: more than %d pages", r.Repo(), maxListingPages)
		}
		resp, err := c.do(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", r.Repo(), err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, c.statusError(resp, r, "")
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxListingBytes+1))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", r.Repo(), err)
		}
		if len(data) > maxListingBytes {
			return nil, fmt.Errorf("listing %s: a page over %d bytes", r.Repo(), maxListingBytes)
		}
		got, err := parseTree(data)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", r.Repo(), err)
		}
		files = append(files, got...)
		if next, err = c.nextPage(resp, next); err != nil {
			return nil, fmt.Errorf("listing %s: %w", r.Repo(), err)
		}
	}
	return files, nil
}

// nextPage is the URL of the Link header's rel="next", resolved against
// the current page; "" when there is none. It must stay on the endpoint's
// host, which the token is sent to.
func (c *client) nextPage(resp *http.Response, current string) (string, error) {
	for _, link := range resp.Header.Values("Link") {
		for _, part := range strings.Split(link, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
				continue
			}
			target = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(target), "<"), ">")
			base, _ := url.Parse(current)
			u, err := base.Parse(target)
			if err != nil || u.Host != base.Host {
				return "", fmt.Errorf("bad next page %q", target)
			}
			return u.String(), nil
		}
	}
	return "", nil
}

// stat reads a file's size and checksum from the headers of a HEAD of its
// resolve URL, as Hugging Face sends them: X-Linked-Size and X-Linked-Etag
// (the SHA-256) on the redirect of a file in LFS, Content-Length and ETag
// (the Git blob's id) for a file in Git. Redirects are followed only until
// a response carries them.
func (c *client) stat(ctx context.Context, r Ref) (remoteFile, error) {
	resp, err := c.do(ctx, http.MethodHead, c.resolveURL(r), nil)
	if err != nil {
		return remoteFile{}, fmt.Errorf("%s: %w", r, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return remoteFile{}, c.statusError(resp, r, r.File)
	}
	return fileFromHeaders(r.File, resp.Header)
}

// fileFromHeaders reads size and checksum from a resolve response's headers.
func fileFromHeaders(name string, h http.Header) (remoteFile, error) {
	f := remoteFile{Path: name, Size: -1}
	size := h.Get("X-Linked-Size")
	if size == "" {
		size = h.Get("Content-Length")
	}
	if n, err := strconv.ParseInt(size, 10, 64); err == nil && n >= 0 {
		f.Size = n
	}
	if etag := unquoteETag(h.Get("X-Linked-Etag")); isHex(etag, 64) {
		f.SHA256 = etag
	} else if etag := unquoteETag(h.Get("ETag")); isHex(etag, 64) {
		f.SHA256 = etag
	} else if isHex(etag, 40) {
		f.GitOID = etag
	}
	switch {
	case f.Size < 0:
		return f, fmt.Errorf("%s: the server sent no size (X-Linked-Size or Content-Length)", name)
	case f.SHA256 == "" && f.GitOID == "":
		return f, fmt.Errorf("%w: %s: the server sent no checksum (X-Linked-Etag or ETag)", ErrChecksum, name)
	}
	return f, nil
}

// unquoteETag turns W/"abc" or "abc" into abc, lowercased.
func unquoteETag(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.ToLower(strings.Trim(s, `"`))
}

// resolveURL is where a file of a repository is downloaded from.
func (c *client) resolveURL(r Ref) string {
	els := strings.Split(r.File, "/")
	for i, el := range els {
		els[i] = url.PathEscape(el)
	}
	return c.endpoint + "/" + r.Owner + "/" + r.Name + "/resolve/main/" + strings.Join(els, "/")
}

// statusError turns a failed response into an error naming the repository
// (and file), that wraps ErrNotFound, ErrGated or, for statuses worth
// retrying (429, 5xx), errTransient.
func (c *client) statusError(resp *http.Response, r Ref, file string) error {
	what := r.Repo()
	if file != "" {
		what += "/" + file
	}
	status := resp.Status
	if msg := resp.Header.Get("X-Error-Message"); msg != "" {
		status += " (" + truncate(msg, 200) + ")"
	}
	code := resp.Header.Get("X-Error-Code")
	switch {
	case code == "RepoNotFound" || (resp.StatusCode == http.StatusNotFound && file == ""):
		hint := ""
		if c.token == "" {
			hint = " (if it is private, set HF_TOKEN)"
		}
		return fmt.Errorf("%w: repository %s: %s%s", ErrNotFound, r.Repo(), status, hint)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s has no file %s: %s", ErrNotFound, r.Repo(), file, status)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		how := "accept its conditions on " + c.endpoint + "/" + r.Repo() +
			", then set HF_TOKEN to an access token with read access (https://huggingface.co/settings/tokens)"
		if c.token != "" {
			how = "the token in HF_TOKEN has no access to it: accept its conditions on " + c.endpoint + "/" + r.Repo() +
				" with the account the token belongs to"
		}
		return fmt.Errorf("%w: %s: %s: the repository is gated or private; %s", ErrGated, what, status, how)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return retryable(fmt.Errorf("%s: %s", what, status))
	}
	return fmt.Errorf("%s: unexpected %s", what, status)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// errTransient marks failures worth a retry (errors.Is): a dropped
// connection, a stalled or truncated body, a 5xx.
var errTransient = errors.New("transient")

// retryable marks err as worth a retry, without changing its message.
func retryable(err error) error { return transientError{err} }

type transientError struct{ err error }

func (e transientError) Error() string        { return e.err.Error() }
func (e transientError) Unwrap() error        { return e.err }
func (e transientError) Is(target error) bool { return target == errTransient }
