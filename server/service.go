// Package server is an OpenAI-compatible HTTP service over one model:
// POST /v1/completions, POST /v1/chat/completions, POST /apply-template,
// GET /v1/models, GET /health and GET /metrics (Prometheus).
//
// A [Server] is an [http.Handler]: mount it on any mux (under a prefix with
// [http.StripPrefix]) or run it with [Server.Serve]. Requests share the
// model by continuous batching: each running request holds a slot (a
// session and its KV cache), and one forward pass advances every slot's
// sequence by a token ([model.Batch]); requests join and leave the batch
// between steps, and new prompts are prefilled a chunk at a time between
// decode steps. A slot keeps its cache when its request ends, and the next
// request whose prompt shares a prefix with it reuses it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/tokenizer"
)

// Options configures a [Server]. The zero value is the default, except
// Queue: 0 means no waiting room.
type Options struct {
	// Parallel is the number of slots: requests generating at once, their
	// tokens decoded together in one batch. 0 means DefaultParallel, cut
	// to what KVCacheBytes holds.
	Parallel int
	// KVCacheBytes bounds the memory of all slots' KV caches together
	// (each slot holds a whole context: KVBytesPerSlot). 0 means
	// DefaultKVCacheBytes. It must hold at least one slot.
	KVCacheBytes int64
	// KeyCache and ValueCache are the element types of the slots' cached
	// keys and values (model.KVType); the zero value is float32.
	KeyCache, ValueCache model.KVType
	// Threads is the number of cores a step uses; 0 means all.
	Threads int
	// Batch is the number of prompt tokens prefilled at once: the most
	// that running streams wait for a new prompt between two tokens. 0
	// means model.DefaultBatch.
	Batch int
	// Queue is the number of requests that may wait for a slot; past it
	// the answer is 429.
	Queue int
	// RequestTimeout bounds a generation; 0 means no limit.
	RequestTimeout time.Duration
	// WriteTimeout bounds each write (an answer, one streamed event); 0
	// means 60 s.
	WriteTimeout time.Duration
	// ReadTimeout bounds reading a request (Serve only); 0 means 30 s.
	ReadTimeout time.Duration
	// ShutdownTimeout is how long Serve lets requests in flight finish
	// when its context is cancelled; 0 means 30 s.
	ShutdownTimeout time.Duration
	// ChatTemplate is Jinja source that renders chats, overriding the
	// model's (a GGUF file's; llama2.c checkpoints chat as Llama 2).
	ChatTemplate string
	// TemplateLimits bound each rendering of the chat template (the
	// file's or ChatTemplate); zero fields take chat.DefaultLimits'.
	TemplateLimits chat.Limits
	// ModelID names the model in responses; "" means the file's base name.
	ModelID string
	// Logger receives one line per request; nil discards them.
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultParallel     = 8
	DefaultKVCacheBytes = 4 << 30
)

// Limits that are not options.
const (
	maxBodyBytes      = 1 << 20 // larger request bodies get 413
	defaultMaxTokens  = 256
	maxStopStrings    = 4 // as OpenAI
	readHeaderTimeout = 10 * time.Second
	// shutdownGrace is how long the handlers cancelled at the shutdown
	// timeout have to send their clients the reason.
	shutdownGrace = time.Second
	idleTimeout   = 120 * time.Second
	// zeroSeed replaces seed 0, which model.NewSampler would take as "seed
	// from the clock", so that every seed a client sends is reproducible.
	zeroSeed = 0x9E3779B97F4A7C15
)

// KVBytesPerSlot is the memory of one slot's KV cache for m, with keys
// kept in k and values in v: a whole context (layers × seq_len × kv_dim
// values of each).
func KVBytesPerSlot(m *model.Model, k, v model.KVType) int64 {
	return m.KVCacheBytes(k, v)
}

// Server is the HTTP service over one model. Build it with [New]; it is an
// [http.Handler].
type Server struct {
	model *model.Model
	tok   *tokenizer.Tokenizer
	tmpl  *chat.Template // nil: llama2.c's Llama 2 rendering (renderChat)
	tools toolFormat     // how the chat template writes tool calls
	// grammars keeps recent requests' grammars with their masks.
	grammars grammarCache
	opts     Options
	log      *slog.Logger
	modelID  string
	created  int64
	handler  http.Handler
	metrics  *metrics
	sched    *scheduler

	// admit bounds the requests that hold or wait for a slot (parallel +
	// queue); past it the answer is 429.
	admit chan struct{}
	// draining is closed when shutdown begins: requests not yet
	// generating get 503.
	draining  chan struct{}
	drainCtx  context.Context // cancelled with draining: cuts body reads short
	drainNow  context.CancelFunc
	drainOnce sync.Once
	closeOnce sync.Once

	reading atomic.Int64 // request bodies being read (readBody)
	// fresh holds Serve's connections whose request header is still
	// arriving (http.StateNew).
	freshMu sync.Mutex
	fresh   map[net.Conn]struct{}

	// onToken, when set (by tests), runs before each sampled token is
	// handled, and onPrefill after each prefilled chunk of pending prompt
	// tokens, in the scheduler's goroutine.
	onToken   func(ctx context.Context)
	onPrefill func(ctx context.Context, pending int)
}

// New builds a server over m, whose text tok encodes and decodes. The
// server owns neither: close it ([Server.Close]) before them.
func New(m *model.Model, tok *tokenizer.Tokenizer, o Options) (*Server, error) {
	if o.Parallel < 0 || o.Threads < 0 || o.Batch < 0 || o.Queue < 0 || o.KVCacheBytes < 0 {
		return nil, errors.New("server: Parallel, Threads, Batch, Queue and KVCacheBytes must not be negative")
	}
	if o.KVCacheBytes == 0 {
		o.KVCacheBytes = DefaultKVCacheBytes
	}
	perSlot := KVBytesPerSlot(m, o.KeyCache, o.ValueCache)
	fit := o.KVCacheBytes / perSlot
	if fit < 1 {
		return nil, fmt.Errorf("server: a KV cache budget of %d bytes does not hold one slot (%d bytes)", o.KVCacheBytes, perSlot)
	}
	if o.Parallel == 0 {
		o.Parallel = int(min(DefaultParallel, fit))
	} else if int64(o.Parallel) > fit {
		return nil, fmt.Errorf("server: %d slots need %d bytes of KV cache, more than the budget of %d", o.Parallel, int64(o.Parallel)*perSlot, o.KVCacheBytes)
	}
	if o.Threads == 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.Batch == 0 {
		o.Batch = model.DefaultBatch
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 60 * time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		model: m, tok: tok, opts: o, log: o.Logger,
		modelID:  o.ModelID,
		created:  time.Now().Unix(),
		admit:    make(chan struct{}, o.Parallel+o.Queue),
		draining: make(chan struct{}),
	}
	s.drainCtx, s.drainNow = context.WithCancel(context.Background())
	if s.modelID == "" {
		s.modelID = strings.TrimSuffix(filepath.Base(m.Path()), filepath.Ext(m.Path()))
	}
	var err error
	if s.tmpl, err = serverTemplate(m, o.ChatTemplate); err != nil {
		return nil, err
	}
	s.tools = detectToolFormat(s.tmpl)
	s.metrics = newMetrics(s)
	if s.sched, err = newScheduler(s); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// Options returns the options in effect, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Drain starts a graceful shutdown: /health answers 503, requests not yet
// generating (new, queued, or still sending their body) get 503, and the
// ones generating finish.
func (s *Server) Drain() {
	s.drainOnce.Do(func() {
		close(s.draining)
		s.drainNow()
	})
}

// Close drains the server, cancels the generations still running, waits
// for the scheduler to stop and frees the slots. Requests still in their
// handlers end with an error.
func (s *Server) Close() error {
	s.Drain()
	s.closeOnce.Do(s.sched.close)
	return nil
}

// Serve answers on ln until ctx is cancelled, then shuts down: it stops
// accepting, answers 503 to requests that have not started generating, and
// lets the ones in flight finish for up to ShutdownTimeout before
// cancelling them. It does not Close the server.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	base, cancelBase := context.WithCancelCause(context.Background())
	defer cancelBase(nil)
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnState:         s.trackFresh,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.opts.ShutdownTimeout)
	s.Drain()
	s.cutFresh()
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("requests still running at the shutdown timeout; cancelling them", "err", err)
		// The handlers tell their clients (503, or an error event in a
		// stream) and return at once: let them, then close what is left.
		cancelBase(errShutdownTimeout)
		gctx, stop := context.WithTimeout(context.Background(), shutdownGrace)
		srv.Shutdown(gctx)
		stop()
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	s.log.Info("stopped")
	return nil
}

// trackFresh is Serve's http.Server.ConnState: it keeps the connections
// whose request header is still arriving.
func (s *Server) trackFresh(c net.Conn, st http.ConnState) {
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	if st == http.StateNew {
		if s.fresh == nil {
			s.fresh = make(map[net.Conn]struct{})
		}
		s.fresh[c] = struct{}{}
	} else {
		delete(s.fresh, c)
	}
}

// cutFresh ends the reading of the request headers still arriving, at
// shutdown: http.Server.Shutdown waits up to 5 s for such a connection
// before it counts as idle (and ReadHeaderTimeout is 10 s), while requests
// that have not started get 503 anyway.
func (s *Server) cutFresh() {
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	for c := range s.fresh {
		c.SetReadDeadline(time.Now())
	}
}

// freshConns is the number of Serve's connections whose request header
// is still arriving.
func (s *Server) freshConns() int {
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	return len(s.fresh)
}

func (s *Server) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// routes is the whole service: routes behind the logging and recovery
// middleware.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/completions", s.onlyMethod(http.MethodPost, s.handleCompletions))
	mux.HandleFunc("/v1/chat/completions", s.onlyMethod(http.MethodPost, s.handleChat))
	mux.HandleFunc("/apply-template", s.onlyMethod(http.MethodPost, s.handleApplyTemplate))
	mux.HandleFunc("/v1/models", s.onlyMethod(http.MethodGet, s.handleModels))
	mux.HandleFunc("/v1/models/{id}", s.onlyMethod(http.MethodGet, s.handleModel))
	mux.Handle("/metrics", s.onlyMethod(http.MethodGet, s.metrics.handler.ServeHTTP))
	mux.HandleFunc("/health", s.onlyMethod(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		if s.isDraining() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting_down"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "",
			fmt.Sprintf("unknown URL: %s %s", r.Method, r.URL.Path))
	})
	return s.middleware(mux)
}

func (s *Server) onlyMethod(method string, h http.HandlerFunc) http.HandlerFunc {
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
	promptTokens, completionTokens, cachedTokens int
	finish                                       string
	seed                                         uint64
	stream                                       bool
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

// middleware logs one line per request, counts it for /metrics, and turns
// a panic into a logged 500; the server keeps serving.
func (s *Server) middleware(next http.Handler) http.Handler {
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
			s.metrics.request(r.URL.Path, status)
			attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status,
				"prompt_tokens", info.promptTokens, "completion_tokens", info.completionTokens,
				"duration", time.Since(start)}
			if info.finish != "" {
				attrs = append(attrs, "finish_reason", info.finish)
			}
			if info.seed != 0 {
				attrs = append(attrs, "seed", info.seed, "stream", info.stream, "cached_tokens", info.cachedTokens)
			}
			if err := r.Context().Err(); err != nil && status < 400 {
				attrs = append(attrs, "cancelled", true)
			}
			s.log.Info("request", attrs...)
		}()
		next.ServeHTTP(sw, r)
	})
}
