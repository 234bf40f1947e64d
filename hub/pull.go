// Package hub downloads models from Hugging Face (or any server that
// speaks its API) into a local cache: Pull("bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")
// picks the repository's Q4_K_M GGUF file from its listing, downloads it
// under a temporary name (resuming an interrupted download with HTTP
// Range), checks its size and SHA-256 and only then gives it its name.
// A file already in the cache is returned at once, without the network.
//
// The package knows nothing of models beyond a file's first bytes (Kind);
// package main's pull, list and rm subcommands and -hf flags are built on
// it.
package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Errors, for errors.Is.
var (
	// ErrBadRef: a reference that ParseRef cannot read.
	ErrBadRef = errors.New("bad model reference")
	// ErrNotFound: no such repository, or no such file in it.
	ErrNotFound = errors.New("not found")
	// ErrGated: 401 or 403: the repository is gated or private, and
	// HF_TOKEN is missing or has no access to it.
	ErrGated = errors.New("access denied")
	// ErrNoMatch: no GGUF file of the repository carries the tag.
	ErrNoMatch = errors.New("no matching file")
	// ErrAmbiguous: several files match, and the reference must name one.
	ErrAmbiguous = errors.New("ambiguous reference")
	// ErrChecksum: the download does not have the size or SHA-256 that the
	// hub announced (it is removed), or the hub announced none.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrUnsupported: a file llama2 cannot use (a GGUF model split into
	// several files).
	ErrUnsupported = errors.New("unsupported")
)

// DefaultEndpoint is where models come from unless HF_ENDPOINT or
// Options.Endpoint says otherwise.
const DefaultEndpoint = "https://huggingface.co"

// Options configure Pull. The zero value reads the environment.
type Options struct {
	// Endpoint is the hub's base URL: $HF_ENDPOINT, else DefaultEndpoint.
	Endpoint string
	// Token is sent as a bearer token to the endpoint (never to the hosts
	// it redirects to): $HF_TOKEN when empty.
	Token string
	// CacheDir holds the downloads: $LLAMA2_CACHE, else the user's cache
	// directory (os.UserCacheDir) + "/llama2".
	CacheDir string
	// TokenizerURL is where Tokenizer fetches llama2.c's tokenizer.bin:
	// $LLAMA2_TOKENIZER_URL, else DefaultTokenizerURL. Its SHA-256 is
	// checked whatever the URL.
	TokenizerURL string
	// Client makes the requests (its CheckRedirect is replaced: the token
	// stays with the endpoint's host); nil means one with a response-header
	// timeout. A download itself has no time limit, but one that receives
	// nothing for a minute is retried.
	Client *http.Client
	// Progress, if not nil, is called as a download goes, from the
	// goroutine that called Pull.
	Progress func(Progress)
}

// Event says what a Progress reports.
type Event int

const (
	// Waiting: another pull (in this process or another) is downloading
	// the file; this one waits for it.
	Waiting Event = iota
	// Started: the download starts; Resumed > 0 when it continues an
	// interrupted one.
	Started
	// Downloading: Done moved.
	Downloading
	// Retrying: the connection failed (Err says how); the download goes on
	// from where it stopped.
	Retrying
	// Verified: size and checksum match; the file has its name in the
	// cache.
	Verified
	// Failed: the download stopped with an error (Err), which Pull
	// returns; what it received stays for the next pull.
	Failed
)

// Progress is the state of one download.
type Progress struct {
	Event Event
	// Repo is "owner/name" ("" for llama2.c's tokenizer), File the path in
	// it, Path where the file goes.
	Repo, File, Path string
	// Done of Total bytes are on disk; Resumed of them were there when the
	// download started.
	Done, Total, Resumed int64
	// Elapsed is the time since the download started.
	Elapsed time.Duration
	// Err is why a Retrying or Failed download failed.
	Err error
}

// Rate is the download's speed in bytes per second, counting only the
// bytes received since it started (not those resumed); 0 in its first
// 100 ms.
func (p Progress) Rate() float64 {
	if p.Elapsed < 100*time.Millisecond {
		return 0
	}
	return float64(p.Done-p.Resumed) / p.Elapsed.Seconds()
}

// Remaining is the time left at the current rate, or -1 if unknown.
func (p Progress) Remaining() time.Duration {
	rate := p.Rate()
	if rate <= 0 {
		return -1
	}
	return time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second))
}

// Pull returns the path of the file that ref names (see ParseRef) in the
// cache, downloading it first if it is not there.
func Pull(ctx context.Context, ref string, opts Options) (string, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	c, err := newClient(opts)
	if err != nil {
		return "", err
	}
	if p, ok := c.cached(r); ok {
		return p, nil
	}
	var f remoteFile
	if r.File != "" {
		f, err = c.stat(ctx, r)
	} else {
		var files []remoteFile
		if files, err = c.list(ctx, r); err == nil {
			f, err = pick(r, files)
		}
	}
	if err != nil {
		return "", err
	}
	file := Ref{Owner: r.Owner, Name: r.Name, File: f.Path}
	dest := c.repoPath(file)
	err = c.fetch(ctx, download{repo: r.Repo(), file: f.Path, url: c.resolveURL(file), dest: dest, want: f})
	if err != nil {
		return "", err
	}
	if r.File == "" {
		c.saveTag(r, f.Path) // best effort: without it the next pull lists the repository again
	}
	return dest, nil
}

// Cached returns the path of the file that ref names if it is in the
// cache, without the network.
func Cached(ref string, opts Options) (string, bool) {
	r, err := ParseRef(ref)
	if err != nil {
		return "", false
	}
	c, err := newClient(opts)
	if err != nil {
		return "", false
	}
	return c.cached(r)
}

// DefaultTokenizerURL is where llama2.c's tokenizer.bin (the Llama 2
// vocabulary that llama2.c's checkpoints use) is fetched from, unless
// $LLAMA2_TOKENIZER_URL or Options.TokenizerURL says otherwise.
const DefaultTokenizerURL = "https://github.com/karpathy/llama2.c/raw/master/tokenizer.bin"

// llama2cTokenizer is llama2.c's tokenizer.bin (karpathy/llama2.c at
// master): any URL it is fetched from must give these bytes.
var llama2cTokenizer = remoteFile{
	Path:   "tokenizer.bin",
	Size:   433869,
	SHA256: "50a52ef822ee9e83de5ce9d0be0a025a773d019437f58b5ff9dcafb063ece361",
}

// Tokenizer returns the path of llama2.c's tokenizer.bin in the cache,
// fetching it first (from Options.TokenizerURL) if it is not there.
func Tokenizer(ctx context.Context, opts Options) (string, error) {
	c, err := newClient(opts)
	if err != nil {
		return "", err
	}
	dest := c.tokenizerPath()
	if fileExists(dest) {
		return dest, nil
	}
	err = c.fetch(ctx, download{file: llama2cTokenizer.Path, url: c.tokenizerURL, dest: dest, want: llama2cTokenizer})
	if err != nil {
		return "", fmt.Errorf("llama2.c's tokenizer.bin (LLAMA2_TOKENIZER_URL says where from): %w", err)
	}
	return dest, nil
}

// TokenizerFor returns the tokenizer of a llama2.c checkpoint: a
// tokenizer.bin beside it, else llama2.c's (Tokenizer).
func TokenizerFor(ctx context.Context, checkpoint string, opts Options) (string, error) {
	beside := filepath.Join(filepath.Dir(checkpoint), "tokenizer.bin")
	if fi, err := os.Stat(beside); err == nil && fi.Mode().IsRegular() {
		return beside, nil
	}
	return Tokenizer(ctx, opts)
}

// client is Options with the defaults filled in.
type client struct {
	endpoint, token, cacheDir, tokenizerURL string
	endpointHost                            string
	http                                    *http.Client
	progress                                func(Progress)
}

func newClient(o Options) (*client, error) {
	c := &client{
		endpoint:     firstNonEmpty(o.Endpoint, os.Getenv("HF_ENDPOINT"), DefaultEndpoint),
		token:        firstNonEmpty(o.Token, os.Getenv("HF_TOKEN")),
		cacheDir:     firstNonEmpty(o.CacheDir, os.Getenv("LLAMA2_CACHE")),
		tokenizerURL: firstNonEmpty(o.TokenizerURL, os.Getenv("LLAMA2_TOKENIZER_URL"), DefaultTokenizerURL),
		progress:     o.Progress,
	}
	c.endpoint = strings.TrimRight(c.endpoint, "/")
	u, err := url.Parse(c.endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("hub endpoint %q (HF_ENDPOINT): want an http or https URL", c.endpoint)
	}
	c.endpointHost = u.Host
	if c.cacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no cache directory (set LLAMA2_CACHE): %w", err)
		}
		c.cacheDir = filepath.Join(dir, "llama2")
	}
	hc := http.Client{Transport: defaultTransport}
	if o.Client != nil {
		hc = *o.Client
	}
	hc.CheckRedirect = c.checkRedirect
	c.http = &hc
	return c, nil
}

var defaultTransport = func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	return t
}()

// checkRedirect follows up to 10 redirects. The token stays with the
// endpoint's host. A HEAD stops at the response that carries a file's
// checksum (X-Linked-Etag: Hugging Face's redirect of a file in LFS to its
// storage).
func (c *client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("more than 10 redirects")
	}
	if req.Method == http.MethodHead && req.Response != nil && req.Response.Header.Get("X-Linked-Etag") != "" {
		return http.ErrUseLastResponse
	}
	if req.URL.Host != c.endpointHost {
		req.Header.Del("Authorization")
	}
	return nil
}

// do sends a request, with the token if it goes to the endpoint.
func (c *client) do(ctx context.Context, method, target string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "llama2-go")
	if c.token != "" && req.URL.Host == c.endpointHost {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.http.Do(req)
}

func (c *client) report(p Progress) {
	if c.progress != nil {
		c.progress(p)
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
