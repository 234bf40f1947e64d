package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/llama2-go/llama2/gguf"
	"github.com/llama2-go/llama2/tokenizer"
)

const tokenizeUsage = `Usage: llama2 tokenize <checkpoint> [options]
Prints the token ids of a text on one line, separated by spaces.
<checkpoint> is a llama2.c checkpoint (its vocabulary is then -z's), a GGUF
model or a vocabulary-only GGUF file (the vocabulary inside).
Options:
  -i <string>  the text; default: all of standard input
  -z <string>  llama2.c tokenizer for a llama2.c checkpoint, default tokenizer.bin
  -bos         start with BOS; default: as the vocabulary says (add_bos_token)
  -eos         end with EOS; default: as the vocabulary says (add_eos_token)
  -special     turn the text of special tokens (<s>, </s>, ...) into those
               tokens, as for a chat template; by default all text is text
  -pieces      print each token as id:"piece", the vocabulary entry quoted
               as in Go (SentencePiece writes spaces as ▁)
Example: llama2 tokenize model.gguf -special -i "<s>[INST] Hi [/INST]"
`

type tokenizeOptions struct {
	checkpoint string
	tokenizer  string
	tokSet     bool  // -z was given
	bos, eos   *bool // nil: the vocabulary's default
	special    bool
	pieces     bool
	text       *string // nil: read standard input
}

// runTokenize is `llama2 tokenize`; it returns the exit code.
func runTokenize(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseTokenizeArgs(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, tokenizeUsage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "error: %v\n\n%s", err, tokenizeUsage)
		return 1
	}
	if err := tokenize(o, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

func parseTokenizeArgs(args []string) (tokenizeOptions, error) {
	var o tokenizeOptions
	fs := flag.NewFlagSet("llama2 tokenize", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // runTokenize prints the usage itself
	fs.StringVar(&o.tokenizer, "z", "tokenizer.bin", "")
	bos := fs.Bool("bos", false, "")
	eos := fs.Bool("eos", false, "")
	fs.BoolVar(&o.special, "special", false, "")
	fs.BoolVar(&o.pieces, "pieces", false, "")
	text := fs.String("i", "", "")
	var err error
	if o.checkpoint, err = parseWithCheckpoint(fs, args); err != nil {
		return o, err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "z":
			o.tokSet = true
		case "bos":
			o.bos = bos
		case "eos":
			o.eos = eos
		case "i":
			o.text = text
		}
	})
	return o, nil
}

func tokenize(o tokenizeOptions, stdin io.Reader, stdout io.Writer) error {
	tok, err := loadCheckpointTokenizer(o)
	if err != nil {
		return err
	}
	var text string
	if o.text != nil {
		text = *o.text
	} else {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
		text = string(b)
	}
	bos, eos := tok.AddBOS(), tok.AddEOS()
	if o.bos != nil {
		bos = *o.bos
	}
	if o.eos != nil {
		eos = *o.eos
	}
	var ids []int
	if o.special {
		ids = tok.EncodeSpecial(text, bos, eos)
	} else {
		ids = tok.Encode(text, bos, eos)
	}
	out := bufio.NewWriter(stdout)
	var buf []byte
	for i, id := range ids {
		if i > 0 {
			buf = append(buf, ' ')
		}
		buf = strconv.AppendInt(buf, int64(id), 10)
		if o.pieces {
			buf = append(buf, ':')
			buf = strconv.AppendQuote(buf, tok.Piece(id))
		}
	}
	buf = append(buf, '\n')
	out.Write(buf)
	if err := out.Flush(); err != nil {
		return fmt.Errorf("writing the output: %w", err)
	}
	return nil
}

// loadCheckpointTokenizer returns the vocabulary inside a GGUF checkpoint,
// or -z's tokenizer, sized by the llama2.c checkpoint's header.
func loadCheckpointTokenizer(o tokenizeOptions) (*tokenizer.Tokenizer, error) {
	isGGUF, err := gguf.IsGGUFFile(o.checkpoint)
	if err != nil {
		if pe := (*os.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err // the message names the file already
		}
		return nil, fmt.Errorf("checkpoint %s: %w", o.checkpoint, err)
	}
	if isGGUF {
		if o.tokSet {
			return nil, fmt.Errorf("-z %s: %s is a GGUF file, which holds its own vocabulary", o.tokenizer, o.checkpoint)
		}
		return tokenizer.Load(o.checkpoint, 0)
	}
	vocabSize, err := checkpointVocabSize(o.checkpoint)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", o.checkpoint, err)
	}
	return tokenizer.Load(o.tokenizer, vocabSize)
}

// checkpointVocabSize reads the vocab_size field of a llama2.c checkpoint's
// header: the sixth int32 of the legacy (v0) header, negative when the
// classifier is separate, or of the dimensions after the magic "ak42" and
// the version in versions 1 and 2. (package model reads and checks the
// whole header; tokenizing needs only this field.)
func checkpointVocabSize(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		if pe := (*os.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err
		}
		return 0, err
	}
	defer f.Close()
	var head [36]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, err
	}
	off := 20 // v0: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size
	if n >= 4 && binary.LittleEndian.Uint32(head[:]) == 0x616b3432 {
		off = 8 + 20 // magic, version, then the same fields
	}
	if n < off+4 {
		return 0, fmt.Errorf("file is %d bytes, shorter than a checkpoint header", n)
	}
	v := int64(int32(binary.LittleEndian.Uint32(head[off:])))
	if v < 0 {
		v = -v // a separate classifier
	}
	if v == 0 || v > 1<<31-1 {
		return 0, fmt.Errorf("header field vocab_size is %d, must be positive", v)
	}
	return int(v), nil
}
