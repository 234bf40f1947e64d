package main

// The serve subcommand: flags, the listener and signals around package
// server, which is the service itself.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/server"
)

// noLimitAtZero turns the -template-* flags' "0 or less: no limit" into
// chat.Limits' negative values (whose zero means the default).
func noLimitAtZero(l chat.Limits) chat.Limits {
	if l.Timeout <= 0 {
		l.Timeout = -1
	}
	if l.MaxSteps <= 0 {
		l.MaxSteps = -1
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = -1
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = -1
	}
	if l.MaxMemoryBytes <= 0 {
		l.MaxMemoryBytes = -1
	}
	return l
}

const serveUsage = `Usage: llama2 serve <checkpoint> [options]
Serves the model over HTTP with OpenAI's API: POST /v1/completions,
POST /v1/chat/completions, GET /v1/models, GET /health, GET /metrics
(Prometheus) and POST /apply-template (the chat template's rendering).
Requests are decoded together (continuous batching), one token of each
running request per forward pass.
Options:
  -z <path>                tokenizer, default: the GGUF model's own, else tokenizer.bin
  -chat-template-file <f>  Jinja chat template, overriding the GGUF model's
  -addr <host:port>        address to listen on, default 127.0.0.1:8080
  -parallel <int>          slots: requests generating at once, decoded together, default 8
                           (fewer if -kv-cache-mib holds fewer)
  -kv-cache-mib <int>      memory for all slots' KV caches, default 4096
  -ctk, -ctv <type>        element type of the cached keys, values: f32 (default), f16 or q8_0
  -threads <int>           cores a step uses, default all
  -batch <int>             prompt tokens prefilled at once between decode steps, default 128
  -queue <int>             requests waiting for a slot before 429, default 16
  -request-timeout <dur>   longest a generation may run, default 0 (no limit)
  -read-timeout <dur>      longest the reading of a request (header and body) may take, default 30s
  -write-timeout <dur>     longest a single write (a response or one streamed chunk) may take, default 60s
  -shutdown-timeout <dur>  how long requests in flight may finish after SIGINT/SIGTERM, default 30s
  -log-format <text|json>  format of the log on standard error, default text
  -template-timeout <dur>  longest the chat template may take to render a request, default 2s
  -template-max-steps <n>  steps a rendering may take (statements, expressions, loop
                           turns, elements walked by filters and printing), default 10000000
  -template-max-depth <n>  nesting of macro calls and of values, default 100
  -template-max-output-kib <n>  rendered text, default 4096
  -template-max-memory-mib <n>  strings and lists a rendering builds, in total, default 128
                           (for every -template-* limit, 0 means none; a template over one
                           fails its request with a 400)
  -q8                      quantize an fp32 checkpoint to Q8_0 (int8) when loading it
  -mmap=<bool>             map the weights (true) or read them into memory (false), default by size
  -mlock                   lock the weights in RAM
` + hfUsage

type serveOptions struct {
	checkpoint      string
	tokenizer       string
	tokenizerSet    bool // -z was given
	chatTemplate    string
	addr            string
	parallel        int
	kvCacheMiB      int64
	cacheK, cacheV  model.KVType
	threads         int
	batch           int
	queue           int
	requestTimeout  time.Duration
	readTimeout     time.Duration
	writeTimeout    time.Duration
	shutdownTimeout time.Duration
	logFormat       string
	templateLimits  chat.Limits
	q8              bool
	mmap            model.MmapMode
	mlock           bool
	hf              hfFlag
}

func parseServeArgs(args []string) (serveOptions, error) {
	var o serveOptions
	fs := flag.NewFlagSet("llama2 serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.tokenizer, "z", "tokenizer.bin", "")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "")
	fs.IntVar(&o.parallel, "parallel", 0, "")
	fs.Int64Var(&o.kvCacheMiB, "kv-cache-mib", server.DefaultKVCacheBytes>>20, "")
	fs.Var(&o.cacheK, "ctk", "")
	fs.Var(&o.cacheV, "ctv", "")
	fs.IntVar(&o.threads, "threads", 0, "")
	fs.IntVar(&o.batch, "batch", model.DefaultBatch, "")
	fs.IntVar(&o.queue, "queue", 16, "")
	fs.DurationVar(&o.requestTimeout, "request-timeout", 0, "")
	fs.DurationVar(&o.readTimeout, "read-timeout", 30*time.Second, "")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 60*time.Second, "")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "")
	fs.StringVar(&o.logFormat, "log-format", "text", "")
	fs.BoolVar(&o.q8, "q8", false, "")
	fs.StringVar(&o.chatTemplate, "chat-template-file", "", "")
	d := chat.DefaultLimits
	fs.DurationVar(&o.templateLimits.Timeout, "template-timeout", d.Timeout, "")
	fs.Int64Var(&o.templateLimits.MaxSteps, "template-max-steps", d.MaxSteps, "")
	fs.IntVar(&o.templateLimits.MaxDepth, "template-max-depth", d.MaxDepth, "")
	outKiB := fs.Int("template-max-output-kib", d.MaxOutputBytes>>10, "")
	memMiB := fs.Int64("template-max-memory-mib", d.MaxMemoryBytes>>20, "")
	fs.Var(&o.mmap, "mmap", "")
	fs.BoolVar(&o.mlock, "mlock", false, "")
	o.hf.register(fs)
	var err error
	if o.checkpoint, err = parseWithCheckpoint(fs, args); err != nil {
		return o, err
	}
	fs.Visit(func(f *flag.Flag) { o.tokenizerSet = o.tokenizerSet || f.Name == "z" })
	o.templateLimits.MaxOutputBytes = *outKiB << 10
	o.templateLimits.MaxMemoryBytes = *memMiB << 20
	o.templateLimits = noLimitAtZero(o.templateLimits)
	switch {
	case o.parallel < 0:
		return o, fmt.Errorf("-parallel %d must not be negative", o.parallel)
	case o.kvCacheMiB < 1:
		return o, fmt.Errorf("-kv-cache-mib %d must be positive", o.kvCacheMiB)
	case o.threads < 0:
		return o, fmt.Errorf("-threads %d must not be negative", o.threads)
	case o.batch < 1:
		return o, fmt.Errorf("-batch %d must be at least 1", o.batch)
	case o.queue < 0:
		return o, fmt.Errorf("-queue %d must not be negative", o.queue)
	case o.requestTimeout < 0:
		return o, fmt.Errorf("-request-timeout %v must not be negative", o.requestTimeout)
	case o.readTimeout <= 0:
		return o, fmt.Errorf("-read-timeout %v must be positive", o.readTimeout)
	case o.writeTimeout <= 0:
		return o, fmt.Errorf("-write-timeout %v must be positive", o.writeTimeout)
	case o.shutdownTimeout < 0:
		return o, fmt.Errorf("-shutdown-timeout %v must not be negative", o.shutdownTimeout)
	case o.logFormat != "text" && o.logFormat != "json":
		return o, fmt.Errorf("unknown -log-format %q (text or json)", o.logFormat)
	}
	return o, nil
}

// runServe is `llama2 serve`: it serves until ctx is cancelled (SIGINT, from
// main) or SIGTERM arrives, then shuts down gracefully. It returns the exit
// code. Nothing is written to stdout except the usage for -h.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseServeArgs(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, serveUsage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "error: %v\n\n%s", err, serveUsage)
		return 1
	}
	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	if o.logFormat == "json" {
		h = slog.NewJSONHandler(stderr, nil)
	}
	logger := slog.New(h)
	fail := func(err error) int {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()

	if o.checkpoint, o.tokenizer, err = o.hf.resolve(ctx, o.checkpoint, o.tokenizer, o.tokenizerSet, stderr); err != nil {
		return fail(err)
	}
	var tmpl []byte
	if o.chatTemplate != "" {
		if tmpl, err = os.ReadFile(o.chatTemplate); err != nil {
			return fail(fmt.Errorf("chat template: %w", err))
		}
	}
	m, err := openModel(o.checkpoint, o.q8, openOptions(o.mmap, o.mlock, o.q8, stderr))
	if err != nil {
		return fail(err)
	}
	defer m.Close()
	tok, err := modelTokenizer(m, o.tokenizer, o.tokenizerSet)
	if err != nil {
		return fail(err)
	}
	s, err := server.New(m, tok, server.Options{
		Parallel: o.parallel, KVCacheBytes: o.kvCacheMiB << 20, Threads: o.threads, Batch: o.batch,
		KeyCache: o.cacheK, ValueCache: o.cacheV,
		Queue: o.queue, RequestTimeout: o.requestTimeout, ReadTimeout: o.readTimeout, WriteTimeout: o.writeTimeout,
		ShutdownTimeout: o.shutdownTimeout, ChatTemplate: string(tmpl), TemplateLimits: o.templateLimits, Logger: logger,
	})
	if err != nil {
		if o.chatTemplate != "" {
			err = fmt.Errorf("%s: %w", o.chatTemplate, err)
		}
		return fail(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fail(err)
	}
	so := s.Options()
	logger.Info("listening", "addr", ln.Addr().String(), "model", m.Path(),
		"parallel", so.Parallel, "threads", so.Threads, "queue", so.Queue, "seq_len", m.Config.SeqLen,
		"kv_cache_bytes_per_slot", server.KVBytesPerSlot(m, o.cacheK, o.cacheV))
	if err := s.Serve(ctx, ln); err != nil {
		logger.Error("server failed", "err", err)
		return 1
	}
	return 0
}
