package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// download is one file to bring into the cache.
type download struct {
	repo, file string // for messages and Progress; repo "" for llama2.c's tokenizer
	url        string
	dest       string
	want       remoteFile
}

func (d download) name() string {
	if d.repo == "" {
		return d.url
	}
	return d.repo + "/" + d.file
}

// Tuning, variables so that tests can shorten them.
var (
	// maxFailures is how many attempts in a row may fail without receiving
	// a byte before a pull gives up (one that receives bytes starts the
	// count again).
	maxFailures = 5
	// retryBackoff times the failures in a row is the wait before the next
	// attempt.
	retryBackoff = time.Second
	// stallTimeout: an attempt that receives nothing for this long is
	// abandoned and retried.
	stallTimeout = time.Minute
	// progressEvery spaces Downloading reports.
	progressEvery = 100 * time.Millisecond
)

// errStalled is the cause of an attempt abandoned by its watchdog.
var errStalled = errors.New("stalled")

// fetch downloads d into d.dest: under the lock of d.dest, into a partial
// file named by the checksum (resumed if it is there), renamed to d.dest
// once its size and checksum match.
func (c *client) fetch(ctx context.Context, d download) error {
	if err := os.MkdirAll(filepath.Dir(d.dest), 0o755); err != nil {
		return fmt.Errorf("%s: %w", d.name(), err)
	}
	t := &transfer{c: c, d: d, p: Progress{Repo: d.repo, File: d.file, Path: d.dest, Total: d.want.Size}}
	unlock, err := lock(ctx, d.dest+".lock", func() { t.p.Event = Waiting; c.report(t.p) })
	if err != nil {
		return fmt.Errorf("%s: waiting for another download of it: %w", d.name(), err)
	}
	defer unlock()
	if fileExists(d.dest) {
		return nil // the other download finished it
	}
	sum := d.want.SHA256 + d.want.GitOID
	partial := d.dest + "." + sum[:16] + ".partial"
	removeOtherPartials(d.dest, partial)
	if t.f, err = os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return fmt.Errorf("%s: %w", d.name(), err)
	}
	defer func() {
		if t.f != nil { // not renamed: keep what it has, if anything
			t.f.Close()
			if fi, err := os.Stat(partial); err == nil && fi.Size() == 0 {
				os.Remove(partial)
			}
		}
	}()
	if err := t.resume(); err != nil {
		return fmt.Errorf("%s: reading the partial download %s: %w", d.name(), partial, err)
	}
	c.report(t.progress(Started))
	if err := t.run(ctx, partial); err != nil {
		p := t.progress(Failed)
		p.Err = err
		c.report(p)
		return err
	}
	c.report(t.progress(Verified))
	return nil
}

// run downloads the rest of the file, checks it and gives it its name.
func (t *transfer) run(ctx context.Context, partial string) error {
	d := t.d
	sum := d.want.SHA256 + d.want.GitOID
	for failures := 0; t.p.Done < d.want.Size; {
		before := t.p.Done
		err := t.attempt(ctx)
		if err == nil && t.p.Done < d.want.Size { // the body ended early, without an error
			err = retryable(fmt.Errorf("%s: the connection closed at %d of %d bytes", d.name(), t.p.Done, d.want.Size))
		}
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil:
			return fmt.Errorf("%s: interrupted at %s of %s; %s is kept: pull again to resume: %w",
				d.name(), FormatBytes(t.p.Done), FormatBytes(d.want.Size), partial, ctx.Err())
		case !errors.Is(err, errTransient):
			return err
		}
		if t.p.Done > before {
			failures = 0
		} else {
			failures++
		}
		if failures >= maxFailures {
			if t.p.Done == 0 {
				return fmt.Errorf("%w (%d tries)", err, failures)
			}
			return fmt.Errorf("%w (%d tries; %s of %s is kept in %s: pull again to resume)",
				err, failures, FormatBytes(t.p.Done), FormatBytes(d.want.Size), partial)
		}
		p := t.progress(Retrying)
		p.Err = err
		t.c.report(p)
		select {
		case <-time.After(retryBackoff * time.Duration(failures)):
		case <-ctx.Done():
		}
	}

	if got := hex.EncodeToString(t.h.Sum(nil)); got != sum {
		t.f.Close()
		t.f = nil
		os.Remove(partial)
		kind := "SHA-256"
		if d.want.SHA256 == "" {
			kind = "Git blob id"
		}
		return fmt.Errorf("%w: %s: the download's %s is %s, the hub's %s; the download is removed",
			ErrChecksum, d.name(), kind, got, sum)
	}
	err := t.f.Sync()
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	t.f = nil
	if err == nil {
		err = os.Rename(partial, d.dest)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", d.name(), err)
	}
	return nil
}

// removeOtherPartials removes the partial downloads of dest other than
// keep: those of an earlier version of the file.
func removeOtherPartials(dest, keep string) {
	des, _ := os.ReadDir(filepath.Dir(dest))
	prefix := filepath.Base(dest) + "."
	for _, de := range des {
		p := filepath.Join(filepath.Dir(dest), de.Name())
		if strings.HasPrefix(de.Name(), prefix) && partialRE.MatchString(de.Name()) &&
			len(de.Name()) == len(prefix)+len("0123456789abcdef.partial") && p != keep {
			os.Remove(p)
		}
	}
}

// transfer is the state of one download: the partial file, the hash of
// what it holds, the progress.
type transfer struct {
	c        *client
	d        download
	f        *os.File
	h        hash.Hash
	p        Progress
	start    time.Time
	reported time.Time
}

// resume hashes what the partial file holds (starting over if it is
// longer than the file) and positions it at its end.
func (t *transfer) resume() error {
	fi, err := t.f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > t.d.want.Size {
		return t.restart()
	}
	t.newHash()
	if _, err := io.Copy(t.h, io.NewSectionReader(t.f, 0, fi.Size())); err != nil {
		return err
	}
	if _, err := t.f.Seek(fi.Size(), io.SeekStart); err != nil {
		return err
	}
	t.p.Done, t.p.Resumed, t.start = fi.Size(), fi.Size(), time.Now()
	return nil
}

// restart empties the partial file.
func (t *transfer) restart() error {
	if err := t.f.Truncate(0); err != nil {
		return err
	}
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	t.newHash()
	t.p.Done, t.p.Resumed, t.start = 0, 0, time.Now()
	return nil
}

func (t *transfer) newHash() {
	if t.d.want.SHA256 != "" {
		t.h = sha256.New()
		return
	}
	t.h = sha1.New()
	fmt.Fprintf(t.h, "blob %d\x00", t.d.want.Size) // Git's object header
}

func (t *transfer) progress(e Event) Progress {
	t.p.Event, t.p.Elapsed = e, time.Since(t.start)
	return t.p
}

// attempt is one GET of the rest of the file. Errors worth another
// attempt wrap errTransient.
func (t *transfer) attempt(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The watchdog: an attempt that receives nothing for stallTimeout
	// (headers or body) is abandoned.
	watchdog := time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	transient := func(err error) error {
		if errors.Is(context.Cause(ctx), errStalled) {
			err = fmt.Errorf("nothing received for %v", stallTimeout)
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL: the name says what it was
		}
		return retryable(fmt.Errorf("%s: %w", t.d.name(), err))
	}

	header := http.Header{}
	if t.p.Done > 0 {
		header.Set("Range", fmt.Sprintf("bytes=%d-", t.p.Done))
	}
	resp, err := t.c.do(ctx, http.MethodGet, t.d.url, header)
	if err != nil {
		return transient(err)
	}
	defer resp.Body.Close()
	size := t.d.want.Size
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if asked := t.p.Done; !ok || start != asked || (total >= 0 && total != size) {
			// Not the bytes asked for: start over.
			if err := t.restart(); err != nil {
				return err
			}
			return retryable(fmt.Errorf("%s: the server sent the range %q for bytes=%d-",
				t.d.name(), resp.Header.Get("Content-Range"), asked))
		}
	case http.StatusOK:
		if t.p.Done > 0 { // the server ignored Range
			if err := t.restart(); err != nil {
				return err
			}
		}
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			return fmt.Errorf("%w: %s: the server sends %d bytes, the hub announced %d",
				ErrChecksum, t.d.name(), resp.ContentLength, size)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if err := t.restart(); err != nil {
			return err
		}
		return retryable(fmt.Errorf("%s: %s", t.d.name(), resp.Status))
	default:
		if t.d.repo == "" {
			err := fmt.Errorf("%s: %s", t.d.url, resp.Status)
			if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
				err = retryable(err)
			}
			return err
		}
		r, _ := ParseRef(t.d.repo + "/" + t.d.file)
		return t.c.statusError(resp, r, t.d.file)
	}

	body := io.LimitReader(readerFunc(func(b []byte) (int, error) {
		n, err := resp.Body.Read(b)
		if n > 0 {
			watchdog.Reset(stallTimeout)
		}
		return n, err
	}), size-t.p.Done)
	_, err = io.CopyBuffer(t, body, make([]byte, 256<<10))
	if err != nil {
		if ctx.Err() != nil && context.Cause(ctx) != errStalled {
			return ctx.Err()
		}
		if errors.Is(err, errWrite) {
			return err
		}
		return transient(err)
	}
	return nil
}

// errWrite marks a failure to write the partial file (a full disk), not
// worth a retry.
var errWrite = errors.New("writing the download")

// Write appends to the partial file and the hash, and reports progress.
func (t *transfer) Write(b []byte) (int, error) {
	n, err := t.f.Write(b)
	t.h.Write(b[:n])
	t.p.Done += int64(n)
	if now := time.Now(); now.Sub(t.reported) >= progressEvery || t.p.Done == t.d.want.Size {
		t.reported = now
		t.c.report(t.progress(Downloading))
	}
	if err != nil {
		return n, fmt.Errorf("%w %s: %v", errWrite, t.f.Name(), err)
	}
	return n, nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be "*": -1).
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	span, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, last, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(first, 10, 64)
	end, err2 := strconv.ParseInt(last, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		var err error
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= end {
			return 0, 0, false
		}
	}
	return start, total, true
}

// FormatBytes formats a byte count in binary units: 512 B, 57.9 MiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
