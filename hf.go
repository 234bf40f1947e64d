package main

// -hf REPO[:TAG] on run, bench and serve: the checkpoint comes from the
// cache of package hub, pulled first if it is not there. And the
// tokenizer of a llama2.c checkpoint from the cache, which the hub does
// not keep beside it.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/llama2-go/llama2/hub"
)

// hfFlag is the -hf flag.
type hfFlag struct{ ref string }

const hfUsage = "  -hf <repo[:tag]>  the model from Hugging Face (pulled into the cache unless it is there), instead of a file\n"

func (h *hfFlag) register(fs *flag.FlagSet) { fs.StringVar(&h.ref, "hf", "", "") }

// checkpointOrHF checks that a command line that may have -hf names one
// model: a checkpoint or -hf.
func checkpointOrHF(fs *flag.FlagSet, checkpoint string) error {
	hf := ""
	if f := fs.Lookup("hf"); f != nil {
		hf = f.Value.String()
	}
	switch {
	case checkpoint == "" && hf == "":
		if fs.Lookup("hf") != nil {
			return errors.New("no checkpoint given (a file, or -hf REPO[:TAG])")
		}
		return errors.New("no checkpoint given")
	case checkpoint != "" && hf != "":
		return fmt.Errorf("a checkpoint (%s) and -hf %s: give one", checkpoint, hf)
	}
	return nil
}

// checkpoint returns the file to open: -hf's, pulled if needed, or the
// checkpoint named. Ctrl-C stops a download (and leaves it resumable).
func (h hfFlag) checkpoint(ctx context.Context, checkpoint string, stderr io.Writer) (string, error) {
	if h.ref == "" {
		return checkpoint, nil
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	return hub.Pull(ctx, h.ref, hubOptions(stderr))
}

// resolve returns the checkpoint and the tokenizer to open. A llama2.c
// checkpoint from the cache (-hf, or a path into the cache) without -z
// takes the tokenizer.bin beside it, else llama2.c's, pulled into the
// cache: the hub's llama2.c repositories hold checkpoints only.
func (h hfFlag) resolve(ctx context.Context, checkpoint, tokenizer string, tokenizerSet bool, stderr io.Writer) (string, string, error) {
	checkpoint, err := h.checkpoint(ctx, checkpoint, stderr)
	if err != nil {
		return "", "", err
	}
	opts := hubOptions(stderr)
	if tokenizerSet || hub.KindOf(checkpoint) != hub.KindCheckpoint || (h.ref == "" && !hub.InCache(checkpoint, opts)) {
		return checkpoint, tokenizer, nil
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	if tokenizer, err = hub.TokenizerFor(ctx, checkpoint, opts); err != nil {
		return "", "", fmt.Errorf("%w; or name a tokenizer with -z", err)
	}
	return checkpoint, tokenizer, nil
}

// hubOptions are package hub's options: the environment's (HF_ENDPOINT,
// HF_TOKEN, LLAMA2_CACHE, LLAMA2_TOKENIZER_URL), with progress on stderr.
func hubOptions(stderr io.Writer) hub.Options {
	return hub.Options{Progress: pullProgress(stderr, isTerminal(stderr))}
}

// isTerminal says whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
