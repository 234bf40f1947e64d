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
	"strings"
	"unicode"

	"github.com/llama2-go/llama2/gguf"
	"github.com/llama2-go/llama2/tokenizer"
)

const tokenizeUsage = `Usage: llama2 tokenize <checkpoint> [options]
Prints the token ids of a text on one line, separated by spaces; with
-detokenize, the text of token ids followed by one newline.
<checkpoint> is a llama2.c checkpoint (its vocabulary is then -z's), a GGUF
model or a vocabulary-only GGUF file (the vocabulary inside): SentencePiece
(Llama 2, Mistral, TinyLlama) or byte-level BPE (Llama 3, Qwen2.5, GPT-2).
Options:
  -i <string>  the text (with -detokenize: the ids, separated by spaces or
               commas); default: all of standard input
  -z <string>  llama2.c tokenizer for a llama2.c checkpoint, default tokenizer.bin
  -bos         start with BOS; default: as the vocabulary says (add_bos_token)
  -eos         end with EOS; default: as the vocabulary says (add_eos_token)
  -special     turn the text of special tokens (<s>, </s>, ...) into those
               tokens, as for a chat template; by default all text is text
  -pieces      print each token as id:"piece", the vocabulary entry quoted
               as in Go (SentencePiece writes spaces as ▁, GPT-2's
               byte-level BPE as Ġ)
  -detokenize  print the text of the ids instead, as llama.cpp's
               llama_detokenize does: special tokens as their text, the
               bytes as they are (a character cut between tokens stays cut)
Examples: llama2 tokenize model.gguf -special -i "<s>[INST] Hi [/INST]"
          llama2 tokenize llama3.gguf -detokenize -i "128000 9906 1917"
`

type tokenizeOptions struct {
	checkpoint string
	tokenizer  string
	tokSet     bool  // -z was given
	bos, eos   *bool // nil: the vocabulary's default
	special    bool
	pieces     bool
	detok      bool
	text       *string // nil: read standard input
}

// loadTokenizer is tokenizer.Load; the golden tests read each vocabulary
// once instead of once a row.
var loadTokenizer = tokenizer.Load

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
	fs.BoolVar(&o.detok, "detokenize", false, "")
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
	if o.detok {
		return detokenize(tok, text, stdout)
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

// detokenize prints the text of the ids in text, and a newline.
func detokenize(tok *tokenizer.Tokenizer, text string, stdout io.Writer) error {
	fields := strings.FieldsFunc(text, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	ids := make([]int, len(fields))
	for i, f := range fields {
		id, err := strconv.Atoi(f)
		if err != nil {
			return fmt.Errorf("-detokenize: %q is not a token id", f)
		}
		if id < 0 || id >= tok.VocabSize() {
			return fmt.Errorf("-detokenize: token id %d is outside the vocabulary of %d tokens", id, tok.VocabSize())
		}
		ids[i] = id
	}
	out := append(tok.Detokenize(nil, ids, true), '\n')
	if _, err := stdout.Write(out); err != nil {
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
		return loadTokenizer(o.checkpoint, 0)
	}
	vocabSize, err := checkpointVocabSize(o.checkpoint)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", o.checkpoint, err)
	}
	return loadTokenizer(o.tokenizer, vocabSize)
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
