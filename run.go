// Command llama2 runs Llama-2-architecture checkpoints on the CPU, with the
// command line of llama2.c's run:
//
//	llama2 <checkpoint> [options]
//	llama2 stories15M.bin -i "Once upon a time"
//
// Run it with -h for the options.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/internal/kernels"
	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole command line, separated from main so tests drive the
// real code path. It returns the process's exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if _, err := kernels.CPUTuning(); err != nil {
		fmt.Fprintln(stderr, "llama2:", err)
		return 1
	}
	if len(args) > 0 {
		switch args[0] {
		case "bench":
			return runBench(args[1:], stdout, stderr)
		case "quantize":
			return runQuantize(args[1:], stdout, stderr)
		case "serve":
			return runServe(ctx, args[1:], stdout, stderr)
		case "pull":
			return runPull(ctx, args[1:], stdout, stderr)
		case "list":
			return runList(args[1:], stdout, stderr)
		case "rm":
			return runRemove(args[1:], stdout, stderr)
		case "tokenize":
			return runTokenize(args[1:], stdin, stdout, stderr)
		}
	}
	opts, err := parseArgs(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "error: %v\n\n%s", err, usage)
		return 1
	}
	if err := generateOrChat(ctx, opts, stdin, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

const usage = `Usage:   llama2 <checkpoint> [options]
         llama2 bench <checkpoint> [options]       (speed, llama-bench style; -h for options)
         llama2 quantize <in.bin> <out.bin> [-g N] (fp32 to Q8_0)
         llama2 serve <checkpoint> [options]       (OpenAI-compatible HTTP server; -h for options)
         llama2 tokenize <checkpoint> -i TEXT      (token ids; -h for options)
         llama2 pull <repo[:tag]|repo/path>        (a model from Hugging Face into the cache; -h for more)
         llama2 list | llama2 rm <repo[:tag]>      (the cache)
Example: llama2 model.bin -n 256 -i "Once upon a time"
         llama2 -hf karpathy/tinyllamas/stories15M.bin -i "Once upon a time"
Options:
  -t <float>   temperature in [0,inf], default 1.0
  -p <float>   p value in top-p (nucleus) sampling in [0,1], default 0.9
  -s <int>     random seed, default time(NULL)
  -n <int>     number of steps to run for, default 256. 0 = max_seq_len
  -i <string>  input prompt
  -z <string>  optional path to custom tokenizer, default tokenizer.bin
  -m <string>  mode: generate|chat, default: generate
  -y <string>  (optional) system prompt in chat mode
  -threads <int>  cores to use, default all of them
  -batch <int>    prompt tokens fed through the model at once, default 128; 1 = one at a time
  -ctk, -ctv <type>  element type of the cached keys, values: f32 (default), f16 or q8_0
  -q8             quantize an fp32 checkpoint to Q8_0 (int8) when loading it
  -mmap=<bool>    map the weights (true) or read them into memory (false), default by size
  -mlock          lock the weights in RAM
  -top-k <int>           keep the k most likely tokens (llama.cpp's sampler chain), default 0 (off)
  -min-p <float>         drop tokens less likely than p times the most likely, default 0 (off)
  -repeat-penalty <float> penalise the last 64 tokens (1 is off), default 1
  -grammar-file <file>   constrain the output to a GBNF grammar (llama.cpp's format)
  -json-schema <file|{}> constrain the output to a JSON schema's documents
                         (any of these five samples with the chain, not run.c's sampler)
` + hfUsage

// options are run.c's settings, after its clamping.
type options struct {
	checkpoint   string
	temperature  float32
	topp         float32
	seed         uint64
	steps        int
	prompt       *string // nil when -i was not given
	tokenizer    string
	tokenizerSet bool // -z was given
	mode         string
	system       *string // nil when -y was not given
	threads      int
	batch        int
	cacheK       model.KVType // -ctk
	cacheV       model.KVType // -ctv
	q8           bool
	mmap         model.MmapMode
	mlock        bool
	hf           hfFlag
	chain        chainFlags // -top-k, -min-p, -repeat-penalty, -grammar-file, -json-schema
}

// parseArgs reads `<checkpoint> [options]` (run.c's order) or, as Go's flag
// package prefers, `[options] <checkpoint>`.
func parseArgs(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("llama2", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints the usage itself
	temperature := fs.Float64("t", 1.0, "")
	topp := fs.Float64("p", 0.9, "")
	seed := fs.Int64("s", 0, "")
	fs.IntVar(&o.steps, "n", 256, "")
	prompt := fs.String("i", "", "")
	fs.StringVar(&o.tokenizer, "z", "tokenizer.bin", "")
	fs.StringVar(&o.mode, "m", "generate", "")
	system := fs.String("y", "", "")
	fs.IntVar(&o.threads, "threads", 0, "")
	fs.IntVar(&o.batch, "batch", model.DefaultBatch, "")
	fs.Var(&o.cacheK, "ctk", "")
	fs.Var(&o.cacheV, "ctv", "")
	fs.BoolVar(&o.q8, "q8", false, "")
	fs.Var(&o.mmap, "mmap", "")
	fs.BoolVar(&o.mlock, "mlock", false, "")
	o.hf.register(fs)
	o.chain.register(fs)

	var err error
	if o.checkpoint, err = parseWithCheckpoint(fs, args); err != nil {
		return o, err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "i":
			o.prompt = prompt
		case "y":
			o.system = system
		case "z":
			o.tokenizerSet = true
		}
	})
	if err := checkTemperature(*temperature); err != nil {
		return o, err
	}
	if err := o.chain.check(); err != nil {
		return o, err
	}
	if o.chain.constrained() && o.mode == "chat" {
		return o, errors.New("-grammar-file and -json-schema work in generate mode, not chat")
	}
	// run.c's clamping.
	o.temperature = float32(max(*temperature, 0))
	o.topp = float32(*topp)
	if *topp < 0 || *topp > 1 {
		o.topp = 0.9
	}
	o.seed = uint64(*seed) // run.c: atoi, then unsigned long long; 0 means the clock
	o.steps = max(o.steps, 0)
	if o.threads < 0 {
		return o, fmt.Errorf("-threads %d must not be negative", o.threads)
	}
	if o.batch < 1 {
		return o, fmt.Errorf("-batch %d must be at least 1", o.batch)
	}
	if o.mode != "generate" && o.mode != "chat" {
		return o, fmt.Errorf("unknown mode %q for -m (generate or chat)", o.mode)
	}
	return o, nil
}

// parseWithCheckpoint parses `<checkpoint> [options]` (run.c's order, which
// Go's flag package alone cannot read: it stops at the first non-flag) or
// `[options] <checkpoint>`, and returns the checkpoint.
func parseWithCheckpoint(fs *flag.FlagSet, args []string) (string, error) {
	var checkpoint string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		checkpoint, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	rest := fs.Args()
	if checkpoint == "" && len(rest) > 0 {
		checkpoint, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("unexpected argument %q (options follow the checkpoint)", rest[0])
	}
	return checkpoint, checkpointOrHF(fs, checkpoint)
}

func generateOrChat(ctx context.Context, o options, stdin io.Reader, stdout, stderr io.Writer) error {
	var err error
	if o.checkpoint, o.tokenizer, err = o.hf.resolve(ctx, o.checkpoint, o.tokenizer, o.tokenizerSet, stderr); err != nil {
		return err
	}
	m, err := openModel(o.checkpoint, o.q8, openOptions(o.mmap, o.mlock, o.q8, stderr))
	if err != nil {
		return err
	}
	defer m.Close()
	tok, err := modelTokenizer(m, o.tokenizer, o.tokenizerSet)
	if err != nil {
		return err
	}
	session, err := m.NewSession(model.SessionOptions{Threads: o.threads, Batch: o.batch, KeyCache: o.cacheK, ValueCache: o.cacheV})
	if err != nil {
		return err
	}
	defer session.Close()
	sampler := sample.New(m.Config.VocabSize, o.temperature, o.topp, o.seed)
	if o.chain.chain() {
		if sampler, err = o.chain.sampler(m.Config.VocabSize, o); err != nil {
			return err
		}
	}
	if o.mode == "generate" && o.chain.constrained() {
		g, err := o.chain.grammar()
		if err != nil {
			return err
		}
		return generateChain(ctx, session, tok, sampler, g, o, stdout, stderr)
	}
	if o.mode == "chat" {
		opts := chatOptions{System: o.system, User: o.prompt, Steps: o.steps}
		if opts.Template, err = chatTemplate(m); err != nil {
			return err
		}
		return chatLoop(ctx, session, tok, sampler, opts, stdin, stdout)
	}
	return generate(ctx, session, tok, sampler, o, stdout, stderr)
}

// modelTokenizer is the tokenizer of m: the file named by -z when given
// (llama2.c's tokenizer.bin or a GGUF vocabulary), else the one inside a
// GGUF model, else tokenizer.bin. A GGUF vocabulary this build does not
// read is an error (model.Model.TokenizerError), unless -z names another.
func modelTokenizer(m *model.Model, path string, set bool) (*tokenizer.Tokenizer, error) {
	if !set {
		if tok := m.Tokenizer(); tok != nil {
			return tok, nil
		}
		if err := m.TokenizerError(); err != nil {
			return nil, err
		}
	}
	return tokenizer.Load(path, m.Config.VocabSize)
}

// chatTemplate is the chat template of a GGUF model (Llama 2's when the
// file has none), or nil for a llama2.c checkpoint, which chats as run.c.
func chatTemplate(m *model.Model) (*chat.Template, error) {
	if !m.Config.GGUF {
		return nil, nil
	}
	return m.Template()
}

// openModel opens a checkpoint and, with q8, quantizes an fp32 one to Q8_0
// in memory, with groups inside rows (the kernels' fast path; no file has to
// match export.py here).
func openModel(path string, q8 bool, opts model.OpenOptions) (*model.Model, error) {
	m, err := model.OpenWith(path, opts)
	if err != nil || !q8 || m.Config.GroupSize > 0 {
		return m, err
	}
	q, err := m.Quantize(model.RowAlignedGroupSize(m.Config))
	m.Close() // q holds its own reference to the mapping
	if err != nil {
		return nil, err
	}
	return q, nil
}

// generate prints the prompt and the story as it is made, then run.c's
// tok/s line on stderr.
func generate(ctx context.Context, s *model.Session, tok *tokenizer.Tokenizer, sampler *sample.Sampler, o options, stdout, stderr io.Writer) error {
	var text string
	if o.prompt != nil {
		text = *o.prompt
	}
	prompt := tok.Encode(text, tok.AddBOS(), false)
	if n := s.Model().Config.SeqLen; len(prompt) > n {
		return fmt.Errorf("the prompt is %d tokens long, more than the model's context of %d", len(prompt), n)
	}
	out := bufio.NewWriter(stdout)
	decoder := tok.NewTextDecoder()
	var buf []byte
	var writeErr error
	stats, err := s.Generate(ctx, prompt, sampler, o.steps, func(prev, next int) bool {
		buf = decoder.Append(buf[:0], prev, next)
		if _, writeErr = out.Write(buf); writeErr == nil {
			writeErr = out.Flush()
		}
		return writeErr == nil
	})
	out.Write(decoder.Flush(buf[:0]))
	out.WriteString("\n")
	if ferr := out.Flush(); writeErr == nil {
		writeErr = ferr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if writeErr != nil {
		return fmt.Errorf("writing the output: %w", writeErr)
	}
	if stats.Positions > 1 {
		fmt.Fprintf(stderr, "achieved tok/s: %f\n", stats.TokensPerSecond())
	}
	return nil
}
