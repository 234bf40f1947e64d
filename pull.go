package main

// The pull, list and rm subcommands: flags and printing around package hub.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llama2-go/llama2/hub"
)

const pullUsage = `Usage: llama2 pull <repo[:tag]|repo/path>...
Downloads models from Hugging Face into the cache (resuming an interrupted
download, checking each file's size and SHA-256) and prints their paths.
A file already in the cache is not fetched again.
  <repo[:tag]>  the repository's GGUF file whose name ends with the tag
                (case-insensitive), e.g. bartowski/Llama-3.2-1B-Instruct-GGUF:Q8_0;
                without a tag Q4_K_M, else its only GGUF file
  <repo/path>   that file, e.g. karpathy/tinyllamas/stories15M.bin; for a
                llama2.c checkpoint, llama2.c's tokenizer.bin comes too (its
                path is printed on a second line)
Environment:
  HF_ENDPOINT           the hub, default https://huggingface.co (a mirror speaking its API)
  HF_TOKEN              access token, for gated and private repositories
  LLAMA2_CACHE          the cache, default <user cache directory>/llama2
  LLAMA2_TOKENIZER_URL  llama2.c's tokenizer.bin, default ` + hub.DefaultTokenizerURL + `
See also: llama2 list, llama2 rm <repo[:tag]|repo/path>, and -hf on llama2, bench and serve.
`

const listUsage = `Usage: llama2 list
Lists the files in the cache: repository, file, size, type.
`

const rmUsage = `Usage: llama2 rm <repo[:tag]|repo/path|repo>...
Removes from the cache a file (repo/path), the GGUF file carrying a tag
(repo:tag) or every file of a repository (repo), with partial downloads.
`

// parseRefs parses the arguments of pull and rm: references, no flags but -h.
func parseRefs(name string, args []string) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() == 0 {
		return nil, errors.New("no model given")
	}
	return fs.Args(), nil
}

// runPull is `llama2 pull`; it returns the exit code: 130 when
// interrupted (the partial download is kept for the next pull).
func runPull(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	refs, err := parseRefs("llama2 pull", args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, pullUsage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "error: %v\n\n%s", err, pullUsage)
		return 1
	}
	opts := hubOptions(stderr)
	for _, ref := range refs {
		path, err := hub.Pull(ctx, ref, opts)
		if err == nil {
			fmt.Fprintln(stdout, path)
			if hub.KindOf(path) == hub.KindCheckpoint {
				if path, err = hub.TokenizerFor(ctx, path, opts); err == nil {
					fmt.Fprintln(stdout, path)
				}
			}
		}
		switch {
		case errors.Is(err, context.Canceled):
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 130
		case err != nil:
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
	}
	return 0
}

// runList is `llama2 list`.
func runList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("llama2 list", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, listUsage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "error: %v\n\n%s", err, listUsage)
		return 1
	}
	opts := hub.Options{}
	entries, err := hub.List(opts)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	dir, _ := hub.CacheDir(opts)
	printEntries(stdout, dir, entries)
	return 0
}

func printEntries(w io.Writer, dir string, entries []hub.Entry) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REPO\tFILE\tSIZE\tTYPE")
	var total int64
	for _, e := range entries {
		repo, kind := e.Repo, e.Kind.String()
		if repo == "" {
			repo = "(llama2.c)"
		}
		if e.Partial {
			kind = "partial download (pull resumes it)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", repo, e.File, hub.FormatBytes(e.Size), kind)
		total += e.Size
	}
	tw.Flush()
	fmt.Fprintf(w, "%d files, %s, in %s\n", len(entries), hub.FormatBytes(total), dir)
}

// runRemove is `llama2 rm`.
func runRemove(args []string, stdout, stderr io.Writer) int {
	refs, err := parseRefs("llama2 rm", args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, rmUsage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "error: %v\n\n%s", err, rmUsage)
		return 1
	}
	for _, ref := range refs {
		removed, err := hub.Remove(ref, hub.Options{})
		for _, p := range removed {
			fmt.Fprintf(stdout, "removed %s\n", p)
		}
		if err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
	}
	return 0
}

// pullProgress returns a hub progress callback that writes to w: on a
// terminal, one line redrawn in place (file, bytes, percent, rate, time
// left); otherwise log lines (the start, every tenth of the file, retries,
// the end).
func pullProgress(w io.Writer, terminal bool) func(hub.Progress) {
	lastTenth, width := -1, 0
	return func(p hub.Progress) {
		name := p.Repo + "/" + p.File
		if p.Repo == "" {
			name = "llama2.c's " + p.File
		}
		if terminal && width > 0 && p.Event != hub.Downloading {
			fmt.Fprintln(w) // end the progress line
			width = 0
		}
		switch p.Event {
		case hub.Waiting:
			fmt.Fprintf(w, "pull: %s: waiting for another download of it\n", name)
		case hub.Started:
			lastTenth = int(10 * p.Done / max(p.Total, 1))
			resume := ""
			if p.Resumed > 0 {
				resume = fmt.Sprintf(", resuming at %s", hub.FormatBytes(p.Resumed))
			}
			fmt.Fprintf(w, "pull: %s (%s) into %s%s\n", name, hub.FormatBytes(p.Total), p.Path, resume)
		case hub.Downloading:
			if terminal {
				line := fmt.Sprintf("pull: %s  %s", p.File, progressFigures(p))
				fmt.Fprintf(w, "\r%-*s", width, line)
				width = max(width, len(line))
				return
			}
			if tenth := int(10 * p.Done / max(p.Total, 1)); tenth > lastTenth && p.Done < p.Total {
				lastTenth = tenth
				fmt.Fprintf(w, "pull: %s: %s\n", name, progressFigures(p))
			}
		case hub.Retrying:
			again := "trying again"
			if p.Done > 0 {
				again = "resuming at " + hub.FormatBytes(p.Done)
			}
			fmt.Fprintf(w, "pull: %v; %s\n", p.Err, again)
		case hub.Verified:
			fmt.Fprintf(w, "pull: %s: %s in %s, checksum verified\n", name, hub.FormatBytes(p.Done-p.Resumed), took(p))
		}
	}
}

// took is "9s (10.0 MiB/s)", or "12ms" when too short for a rate.
func took(p hub.Progress) string {
	if rate := p.Rate(); rate > 0 {
		return fmt.Sprintf("%v (%s/s)", p.Elapsed.Round(100*time.Millisecond), hub.FormatBytes(int64(rate)))
	}
	return p.Elapsed.Round(time.Millisecond).String()
}

// progressFigures is "23.4 MiB / 57.9 MiB  40%  5.2 MiB/s  7s left".
func progressFigures(p hub.Progress) string {
	s := fmt.Sprintf("%s / %s  %3d%%", hub.FormatBytes(p.Done), hub.FormatBytes(p.Total), 100*p.Done/max(p.Total, 1))
	if rate := p.Rate(); rate > 0 {
		s += fmt.Sprintf("  %s/s", hub.FormatBytes(int64(rate)))
	}
	if left := p.Remaining(); left >= 0 {
		s += fmt.Sprintf("  %v left", left.Round(time.Second))
	}
	return strings.TrimSpace(s)
}
