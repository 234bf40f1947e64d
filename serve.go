package main

// The serve subcommand: an OpenAI-compatible HTTP server over one mapped
// model, built only on the public API of package model.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"log/slog"

	"github.com/llama2-go/llama2/model"
)

const serveUsage = `Usage: llama2 serve <checkpoint> [options]
Serves the model over HTTP with OpenAI's API: POST /v1/completions,
POST /v1/chat/completions, GET /v1/models, GET /health.
Options:
  -z <path>                tokenizer, default tokenizer.bin
  -addr <host:port>        address to listen on, default 127.0.0.1:8080
  -parallel <int>          generations at once, default min(4, max(1, cores/2))
  -threads <int>           cores per generation, default max(1, cores/parallel)
  -batch <int>             prompt tokens fed through the model at once, default 128
  -queue <int>             requests waiting for a generation slot before 429, default 16
  -write-timeout <dur>     longest a single write (a response or one streamed chunk) may take, default 60s
  -shutdown-timeout <dur>  how long requests in flight may finish after SIGINT/SIGTERM, default 30s
  -log-format <text|json>  format of the log on standard error, default text
  -q8                      quantize an fp32 checkpoint to Q8_0 (int8) when loading it
  -mmap=<bool>             map the weights (true) or read them into memory (false), default by size
  -mlock                   lock the weights in RAM
`

// Limits that are not flags.
const (
	maxBodyBytes      = 1 << 20 // larger request bodies get 413
	defaultMaxTokens  = 256
	maxStopStrings    = 4 // as OpenAI
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second // the request body; cleared once it is read
	idleTimeout       = 120 * time.Second
	// zeroSeed replaces seed 0, which model.NewSampler would take as "seed
	// from the clock", so that every seed a client sends is reproducible.
	zeroSeed = 0x9E3779B97F4A7C15
)

type serveOptions struct {
	checkpoint      string
	tokenizer       string
	addr            string
	parallel        int
	threads         int
	batch           int
	queue           int
	writeTimeout    time.Duration
	shutdownTimeout time.Duration
	readTimeout     time.Duration // not a flag: readTimeout, shorter in tests
	logFormat       string
	q8              bool
	mmap            model.MmapMode
	mlock           bool
}

// defaultParallel is the number of generations run at once unless -parallel
// says otherwise: half the cores, so each generation has at least two, and at
// most 4, because every slot holds a whole KV cache (seq_len × layers × kv_dim
// × 8 bytes: 75 MB for stories110M, 4 GiB for Llama 2 7B) and one sequence's
// forward pass is bound by memory bandwidth, which more slots share.
func defaultParallel(cpus int) int {
	return min(4, max(1, cpus/2))
}

func parseServeArgs(args []string) (serveOptions, error) {
	o := serveOptions{readTimeout: readTimeout}
	fs := flag.NewFlagSet("llama2 serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.tokenizer, "z", "tokenizer.bin", "")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "")
	fs.IntVar(&o.parallel, "parallel", 0, "")
	fs.IntVar(&o.threads, "threads", 0, "")
	fs.IntVar(&o.batch, "batch", model.DefaultBatch, "")
	fs.IntVar(&o.queue, "queue", 16, "")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 60*time.Second, "")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "")
	fs.StringVar(&o.logFormat, "log-format", "text", "")
	fs.BoolVar(&o.q8, "q8", false, "")
	fs.Var(&o.mmap, "mmap", "")
	fs.BoolVar(&o.mlock, "mlock", false, "")
	var err error
	if o.checkpoint, err = parseWithCheckpoint(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.parallel < 0:
		return o, fmt.Errorf("-parallel %d must not be negative", o.parallel)
	case o.threads < 0:
		return o, fmt.Errorf("-threads %d must not be negative", o.threads)
	case o.batch < 1:
		return o, fmt.Errorf("-batch %d must be at least 1", o.batch)
	case o.queue < 0:
		return o, fmt.Errorf("-queue %d must not be negative", o.queue)
	case o.writeTimeout <= 0:
		return o, fmt.Errorf("-write-timeout %v must be positive", o.writeTimeout)
	case o.shutdownTimeout < 0:
		return o, fmt.Errorf("-shutdown-timeout %v must not be negative", o.shutdownTimeout)
	case o.logFormat != "text" && o.logFormat != "json":
		return o, fmt.Errorf("unknown -log-format %q (text or json)", o.logFormat)
	}
	if o.parallel == 0 {
		o.parallel = defaultParallel(runtime.NumCPU())
	}
	if o.threads == 0 {
		o.threads = max(1, runtime.NumCPU()/o.parallel)
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

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()

	m, err := openModel(o.checkpoint, o.q8, openOptions(o.mmap, o.mlock, o.q8, stderr))
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	defer m.Close()
	tok, err := model.LoadTokenizer(o.tokenizer, m.Config.VocabSize)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	s, err := newServer(m, tok, o, logger)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	defer s.close()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	c := m.Config
	logger.Info("listening", "addr", ln.Addr().String(), "model", s.modelID,
		"parallel", o.parallel, "threads", o.threads, "queue", o.queue, "seq_len", c.SeqLen,
		"kv_cache_bytes_per_slot", int64(c.SeqLen)*int64(c.Layers)*int64(c.KVDim())*8)
	if err := s.serve(ctx, ln); err != nil {
		logger.Error("server failed", "err", err)
		return 1
	}
	return 0
}

// server is the HTTP service over one model.
type server struct {
	model   *model.Model
	tok     *model.Tokenizer
	opts    serveOptions
	log     *slog.Logger
	modelID string
	created int64

	// pool holds the idle sessions: a request takes one for its whole
	// generation and puts it back. admit bounds the requests that hold or
	// wait for a session (parallel + queue); past it the answer is 429.
	pool     chan *model.Session
	sessions int // created, in the pool or in use
	admit    chan struct{}
	// draining is closed when shutdown begins: requests not yet generating
	// get 503 instead of a session.
	draining chan struct{}
	drainOne atomic.Bool

	// onToken, when set (by tests), runs before each sampled token is
	// handled, in the generating goroutine.
	onToken func(ctx context.Context)
}

func newServer(m *model.Model, tok *model.Tokenizer, o serveOptions, logger *slog.Logger) (*server, error) {
	if o.parallel < 1 {
		o.parallel = 1
	}
	s := &server{
		model:    m,
		tok:      tok,
		opts:     o,
		log:      logger,
		modelID:  strings.TrimSuffix(filepath.Base(m.Path()), filepath.Ext(m.Path())),
		created:  time.Now().Unix(),
		pool:     make(chan *model.Session, o.parallel),
		admit:    make(chan struct{}, o.parallel+o.queue),
		draining: make(chan struct{}),
	}
	for range o.parallel {
		sess, err := m.NewSession(model.SessionOptions{Threads: o.threads, Batch: o.batch})
		if err != nil {
			s.close()
			return nil, err
		}
		s.pool <- sess
		s.sessions++
	}
	return s, nil
}

// close waits for every session to come back to the pool and closes it.
func (s *server) close() {
	for range s.sessions {
		select {
		case sess := <-s.pool:
			sess.Close()
		case <-time.After(time.Minute):
			s.log.Error("a session was not returned to the pool; leaving it open")
			return
		}
	}
}

// serve answers on ln until ctx is cancelled, then shuts down: it stops
// accepting, answers 503 to requests that have not started generating, and
// lets the ones in flight finish for up to -shutdown-timeout before
// cancelling them.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       s.opts.readTimeout,
		WriteTimeout:      s.opts.writeTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.opts.shutdownTimeout)
	s.startDraining()
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("requests still running at the shutdown timeout; cancelling them", "err", err)
		cancelBase()
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	s.log.Info("stopped")
	return nil
}

func (s *server) startDraining() {
	if s.drainOne.CompareAndSwap(false, true) {
		close(s.draining)
	}
}

var (
	errBusy     = errors.New("busy")
	errDraining = errors.New("draining")
)

// acquire takes a session from the pool, waiting in the bounded queue.
func (s *server) acquire(ctx context.Context) (*model.Session, error) {
	select {
	case <-s.draining:
		return nil, errDraining
	default:
	}
	select {
	case s.admit <- struct{}{}:
	default:
		return nil, errBusy
	}
	select {
	case sess := <-s.pool:
		return sess, nil
	case <-ctx.Done():
		<-s.admit
		return nil, ctx.Err()
	case <-s.draining:
		<-s.admit
		return nil, errDraining
	}
}

func (s *server) release(sess *model.Session) {
	s.pool <- sess
	<-s.admit
}

// handler is the whole service: routes behind the logging and recovery
// middleware.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/completions", s.onlyMethod(http.MethodPost, s.handleCompletions))
	mux.HandleFunc("/v1/chat/completions", s.onlyMethod(http.MethodPost, s.handleChat))
	mux.HandleFunc("/v1/models", s.onlyMethod(http.MethodGet, s.handleModels))
	mux.HandleFunc("/v1/models/{id}", s.onlyMethod(http.MethodGet, s.handleModel))
	mux.HandleFunc("/health", s.onlyMethod(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-s.draining:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting_down"})
		default:
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "",
			fmt.Sprintf("unknown URL: %s %s", r.Method, r.URL.Path))
	})
	return s.middleware(mux)
}

func (s *server) onlyMethod(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "",
				fmt.Sprintf("method %s is not allowed for %s; use %s", r.Method, r.URL.Path, method))
			return
		}
		h(w, r)
	}
}

// requestInfo collects what the request log line reports; handlers fill it.
type requestInfo struct {
	promptTokens, completionTokens int
	finish                         string
	seed                           uint64
	stream                         bool
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// statusWriter records the status for the log. Unwrap lets
// http.ResponseController reach the connection's Flush and deadlines.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware logs one line per request and turns a panic into a logged 500;
// the server keeps serving.
func (s *server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, http.StatusInternalServerError, "server_error", "internal_error", "", "internal server error")
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status,
				"prompt_tokens", info.promptTokens, "completion_tokens", info.completionTokens,
				"duration", time.Since(start)}
			if info.finish != "" {
				attrs = append(attrs, "finish_reason", info.finish)
			}
			if info.seed != 0 {
				attrs = append(attrs, "seed", info.seed, "stream", info.stream)
			}
			if err := r.Context().Err(); err != nil && status < 400 {
				attrs = append(attrs, "cancelled", true)
			}
			s.log.Info("request", attrs...)
		}()
		next.ServeHTTP(sw, r)
	})
}

// ---- generation ----

// stopFilter holds back text that may be the start of a stop string and
// cuts the text at the first stop string.
type stopFilter struct {
	stops [][]byte
	held  []byte
}

func newStopFilter(stops []string) *stopFilter {
	f := &stopFilter{}
	for _, s := range stops {
		f.stops = append(f.stops, []byte(s))
	}
	return f
}

// push adds text and returns what can be released; matched reports a stop
// string, in which case the text before it is released and the rest dropped.
func (f *stopFilter) push(text []byte) (out []byte, matched bool) {
	f.held = append(f.held, text...)
	at := -1
	for _, s := range f.stops {
		if i := bytes.Index(f.held, s); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at >= 0 {
		out = bytes.Clone(f.held[:at])
		f.held = f.held[:0]
		return out, true
	}
	// Keep the longest suffix that is a proper prefix of a stop string. It
	// starts where a stop string starts, so at a character boundary.
	keep := 0
	for _, s := range f.stops {
		for k := min(len(s)-1, len(f.held)); k > keep; k-- {
			if bytes.HasSuffix(f.held, s[:k]) {
				keep = k
				break
			}
		}
	}
	out = bytes.Clone(f.held[:len(f.held)-keep])
	f.held = append(f.held[:0], f.held[len(f.held)-keep:]...)
	return out, false
}

// flush releases the held text at the end of a generation without a match.
func (f *stopFilter) flush() []byte {
	out := f.held
	f.held = nil
	return out
}

// generation is what a finished generation reports.
type generation struct {
	finish           string // "stop" or "length"
	completionTokens int    // tokens sampled, not counting a final EOS or BOS
}

// errWrite marks a failure to send text to the client.
type errWrite struct{ err error }

func (e errWrite) Error() string { return "writing the response: " + e.err.Error() }
func (e errWrite) Unwrap() error { return e.err }

// generate runs g on sess and passes the text to onText piece by piece:
// whole UTF-8 characters, never any part of a stop string. It stops at EOS
// or BOS, a stop string, max_tokens, the end of the context, a cancelled
// ctx or a failed onText.
func (s *server) generate(ctx context.Context, sess *model.Session, g genParams, onText func([]byte) error) (generation, error) {
	var res generation
	sampler := model.NewSampler(s.model.Config.VocabSize, g.temperature, g.topP, g.seed)
	decoder := s.tok.NewTextDecoder()
	filter := newStopFilter(g.stop)
	steps := len(g.prompt) - 1 + g.maxTokens
	var buf []byte
	var writeErr error
	calls, sampled := 0, 0
	send := func(text []byte) bool {
		if len(text) == 0 {
			return true
		}
		if err := onText(text); err != nil {
			writeErr = err
			return false
		}
		return true
	}
	stats, err := sess.Generate(ctx, g.prompt, sampler, steps, func(prev, next int) bool {
		calls++
		if calls < len(g.prompt) {
			return true // a prompt token
		}
		sampled++
		if s.onToken != nil {
			s.onToken(ctx)
		}
		if next == model.EOS {
			res.finish = "stop"
			return false
		}
		res.completionTokens++
		buf = decoder.Append(buf[:0], prev, next)
		if len(buf) == 0 {
			return true
		}
		out, matched := filter.push(buf)
		if !send(out) {
			return false
		}
		if matched {
			res.finish = "stop"
			return false
		}
		return true
	})
	if writeErr != nil {
		return res, errWrite{writeErr}
	}
	if err != nil {
		return res, err
	}
	if res.finish == "" {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.finish = "length"
		if stats.GeneratedTokens > sampled {
			res.finish = "stop" // BOS was sampled; Generate ends there
		}
	}
	if !send(filter.flush()) {
		return res, errWrite{writeErr}
	}
	return res, nil
}

// ---- handlers ----

func newID(prefix string) string {
	return prefix + strings.ToLower(rand.Text())
}

// prepare reads and validates a generation request and takes a session. On
// failure it has answered and returns ok false.
func (s *server) prepare(w http.ResponseWriter, r *http.Request, parse func(http.ResponseWriter, *http.Request) (genParams, *requestError)) (genParams, *model.Session, bool) {
	g, rerr := parse(w, r)
	// The body is read: the read deadline (ReadTimeout) must not cut the
	// generation short, since net/http cancels the request's context when
	// its background read fails. (net/http clears the deadline itself once
	// the body is read to its end; this also covers a body left unread.)
	http.NewResponseController(w).SetReadDeadline(time.Time{})
	if rerr != nil {
		writeRequestError(w, rerr)
		return g, nil, false
	}
	info := infoFrom(r.Context())
	info.promptTokens, info.seed, info.stream = len(g.prompt), g.seed, g.stream
	sess, err := s.acquire(r.Context())
	switch {
	case errors.Is(err, errBusy):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded", "",
			fmt.Sprintf("the server is busy (generating: %d, queued: %d); retry later", s.opts.parallel, s.opts.queue))
		return g, nil, false
	case errors.Is(err, errDraining):
		writeError(w, http.StatusServiceUnavailable, "server_error", "shutting_down", "", "the server is shutting down")
		return g, nil, false
	case err != nil:
		// The client went away while queued: nobody reads an answer.
		writeError(w, 499, "invalid_request_error", "client_closed_request", "", "the client closed the request")
		return g, nil, false
	}
	return g, sess, true
}

// sse writes server-sent events, extending the write deadline per event so
// that the server's WriteTimeout bounds each write and not the whole stream.
type sse struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (s *server) startSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sse{w: w, rc: http.NewResponseController(w), timeout: s.opts.writeTimeout}
}

func (e *sse) send(v any) error {
	data := []byte("[DONE]")
	if v != nil {
		var err error
		if data, err = json.Marshal(v); err != nil {
			return err
		}
	}
	e.rc.SetWriteDeadline(time.Now().Add(e.timeout))
	if _, err := fmt.Fprintf(e.w, "data: %s\n\n", data); err != nil {
		return err
	}
	return e.rc.Flush()
}

// finishJSON extends the write deadline, then writes a JSON answer.
func (s *server) finishJSON(w http.ResponseWriter, v any) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.opts.writeTimeout))
	writeJSON(w, http.StatusOK, v)
}

// generationFailed answers a generation error before anything was sent.
func (s *server) generationFailed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		writeError(w, 499, "invalid_request_error", "client_closed_request", "", "the request was cancelled")
		return
	}
	s.log.Error("generation failed", "err", err)
	writeError(w, http.StatusInternalServerError, "server_error", "internal_error", "", "generation failed: "+err.Error())
}

// streamFailed ends a stream after an error: an error event if the client
// is still there.
func (s *server) streamFailed(r *http.Request, e *sse, err error) {
	var we errWrite
	if r.Context().Err() != nil || errors.As(err, &we) {
		return // the client is gone (or shutdown gave up): nothing to say
	}
	s.log.Error("generation failed", "err", err)
	e.send(apiErrorBody{Error: apiError{Message: "generation failed: " + err.Error(), Type: "server_error"}})
}

func (s *server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	g, sess, ok := s.prepare(w, r, s.parseCompletion)
	if !ok {
		return
	}
	defer s.release(sess)
	info := infoFrom(r.Context())
	id, created := newID("cmpl-"), time.Now().Unix()
	chunk := func(text string, finish *string) completionResponse {
		return completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.modelID,
			Choices: []completionChoice{{Index: 0, Text: text, FinishReason: finish}}}
	}
	u := func(res generation) *tokenUsage {
		return &tokenUsage{len(g.prompt), res.completionTokens, len(g.prompt) + res.completionTokens}
	}
	if !g.stream {
		var text strings.Builder
		res, err := s.generate(r.Context(), sess, g, func(b []byte) error { text.Write(b); return nil })
		info.completionTokens, info.finish = res.completionTokens, res.finish
		if err != nil {
			s.generationFailed(w, r, err)
			return
		}
		resp := chunk(text.String(), &res.finish)
		resp.Usage = u(res)
		s.finishJSON(w, resp)
		return
	}
	e := s.startSSE(w)
	res, err := s.generate(r.Context(), sess, g, func(b []byte) error { return e.send(chunk(string(b), nil)) })
	info.completionTokens, info.finish = res.completionTokens, res.finish
	if err != nil {
		s.streamFailed(r, e, err)
		return
	}
	if e.send(chunk("", &res.finish)) != nil {
		return
	}
	if g.usage {
		last := chunk("", nil)
		last.Choices, last.Usage = []completionChoice{}, u(res)
		if e.send(last) != nil {
			return
		}
	}
	e.send(nil)
}

// trimFirstSpace drops the space that starts an assistant's answer: the
// first piece after "[/INST]" is usually a word with SentencePiece's leading
// space, which Llama 2's reference decoder (sentencepiece) drops as well.
func trimFirstSpace(onText func([]byte) error) func([]byte) error {
	first := true
	return func(b []byte) error {
		if first {
			first = false
			if b = bytes.TrimPrefix(b, []byte(" ")); len(b) == 0 {
				return nil
			}
		}
		return onText(b)
	}
}

func (s *server) handleChat(w http.ResponseWriter, r *http.Request) {
	g, sess, ok := s.prepare(w, r, s.parseChat)
	if !ok {
		return
	}
	defer s.release(sess)
	info := infoFrom(r.Context())
	id, created := newID("chatcmpl-"), time.Now().Unix()
	u := func(res generation) *tokenUsage {
		return &tokenUsage{len(g.prompt), res.completionTokens, len(g.prompt) + res.completionTokens}
	}
	if !g.stream {
		var text strings.Builder
		res, err := s.generate(r.Context(), sess, g, trimFirstSpace(func(b []byte) error { text.Write(b); return nil }))
		info.completionTokens, info.finish = res.completionTokens, res.finish
		if err != nil {
			s.generationFailed(w, r, err)
			return
		}
		s.finishJSON(w, chatResponse{ID: id, Object: "chat.completion", Created: created, Model: s.modelID,
			Choices: []chatChoice{{Index: 0, Message: &chatMessageOut{Role: "assistant", Content: text.String()},
				FinishReason: &res.finish}},
			Usage: u(res)})
		return
	}
	chunk := func(delta chatDelta, finish *string) chatResponse {
		return chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.modelID,
			Choices: []chatChoice{{Index: 0, Delta: &delta, FinishReason: finish}}}
	}
	e := s.startSSE(w)
	empty := ""
	if e.send(chunk(chatDelta{Role: "assistant", Content: &empty}, nil)) != nil {
		return
	}
	res, err := s.generate(r.Context(), sess, g, trimFirstSpace(func(b []byte) error {
		text := string(b)
		return e.send(chunk(chatDelta{Content: &text}, nil))
	}))
	info.completionTokens, info.finish = res.completionTokens, res.finish
	if err != nil {
		s.streamFailed(r, e, err)
		return
	}
	if e.send(chunk(chatDelta{}, &res.finish)) != nil {
		return
	}
	if g.usage {
		last := chunk(chatDelta{}, nil)
		last.Choices, last.Usage = []chatChoice{}, u(res)
		if e.send(last) != nil {
			return
		}
	}
	e.send(nil)
}

func (s *server) modelObject() modelObject {
	return modelObject{ID: s.modelID, Object: "model", Created: s.created, OwnedBy: "llama2-go"}
}

func (s *server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Object string        `json:"object"`
		Data   []modelObject `json:"data"`
	}{"list", []modelObject{s.modelObject()}})
}

func (s *server) handleModel(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); id != s.modelID {
		writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found", "model",
			fmt.Sprintf("the model %q does not exist; this server has %q", id, s.modelID))
		return
	}
	writeJSON(w, http.StatusOK, s.modelObject())
}
