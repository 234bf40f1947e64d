package server

// The generation endpoints: a request is read and validated, admitted (or
// answered 429/503), handed to the scheduler as a job, and its events are
// turned into one JSON answer or a stream of server-sent events.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/llama2-go/llama2/model"
)

func newID(prefix string) string {
	return prefix + strings.ToLower(rand.Text())
}

// admitRequest reads and validates a generation request and takes an
// admission (a slot or a place in the queue). On failure it has answered
// and returns ok false.
func (s *Server) admitRequest(w http.ResponseWriter, r *http.Request, parse func(http.ResponseWriter, *http.Request) (genParams, *requestError)) (genParams, bool) {
	var g genParams
	if rerr := s.readBody(w, r, func() (rerr *requestError) { g, rerr = parse(w, r); return rerr }); rerr != nil {
		writeRequestError(w, rerr)
		return g, false
	}
	info := infoFrom(r.Context())
	info.promptTokens, info.seed, info.stream = len(g.prompt), g.sampling.Seed, g.stream
	if s.isDraining() {
		writeError(w, http.StatusServiceUnavailable, "server_error", "shutting_down", "", "the server is shutting down")
		return g, false
	}
	select {
	case s.admit <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded", "",
			fmt.Sprintf("the server is busy (generating: %d, queued: %d); retry later", s.opts.Parallel, s.opts.Queue))
		return g, false
	}
	return g, true
}

// readBody runs read, which reads and checks r's body, so that a client
// that stops sending cannot hold its connection: the read deadline Serve
// sets (ReadTimeout, from the start of the request) bounds the read, and
// Drain cuts it short. On success the deadline is lifted: the body has
// been read to its end, and ReadTimeout must not cut the generation short
// (net/http cancels the request's context when its background read
// fails). On failure the deadline stays, and if the body was not read to
// its end the answer closes the connection and the read deadline passes
// at once: net/http would otherwise read the rest of the body, up to 256
// KiB, before sending the answer and again when the handler returns, with
// no deadline at all once it is lifted (a stalled body held its
// connection forever, and shutdown with it).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, read func() *requestError) *requestError {
	rc := http.NewResponseController(w)
	body := &watchedBody{ReadCloser: r.Body}
	r.Body = body
	s.reading.Add(1)
	defer s.reading.Add(-1)
	cut := make(chan struct{})
	stop := context.AfterFunc(s.drainCtx, func() {
		rc.SetReadDeadline(time.Now())
		close(cut)
	})
	rerr := read()
	if !stop() {
		<-cut // the deadline is set: nothing may move it after us
	}
	if rerr == nil {
		rc.SetReadDeadline(time.Time{})
		return nil
	}
	if !body.eof {
		w.Header().Set("Connection", "close")
		rc.SetReadDeadline(time.Now())
	}
	switch {
	case s.isDraining() && body.err != nil:
		return &requestError{status: http.StatusServiceUnavailable, code: "shutting_down", msg: "the server is shutting down"}
	case errors.Is(body.err, os.ErrDeadlineExceeded):
		return &requestError{status: http.StatusRequestTimeout, code: "request_timeout",
			msg: fmt.Sprintf("the request body did not arrive within the read timeout (%v)", s.opts.ReadTimeout)}
	}
	return rerr
}

// watchedBody is a request body that records how its reading ended.
type watchedBody struct {
	io.ReadCloser
	eof bool  // read to its end
	err error // the error of a read that failed
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && b.err == nil:
		b.err = err
	}
	return n, err
}

// Why a generation did not run to its end.
var (
	errDraining        = errors.New("the server is shutting down")
	errTimeout         = errors.New("the request timed out")
	errShutdownTimeout = errors.New("the server is shutting down and the shutdown timeout has passed")
)

// errWrite marks a failure to send text to the client.
type errWrite struct{ err error }

func (e errWrite) Error() string { return "writing the response: " + e.err.Error() }
func (e errWrite) Unwrap() error { return e.err }

// result is a finished generation.
type result struct {
	reason model.StopReason
	usage  model.Usage
}

func (res result) finish() string { return res.reason.FinishReason() }

// generate runs g through the scheduler: onStart once it holds a slot
// (before any text), onText for each piece of text (whole UTF-8
// characters, never any part of a stop string; with logprobs, each
// sampled token, with or without text). The caller holds an admission,
// which the scheduler (or generate, for a request that never got a slot)
// gives back.
func (s *Server) generate(ctx context.Context, g genParams, onStart func() error, onText func(piece) error) (result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.opts.RequestTimeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, s.opts.RequestTimeout, errTimeout)
		defer stop()
	}
	j := &job{ctx: ctx, g: g, events: make(chan event, g.maxTokens+2), queued: time.Now()}
	if err := s.sched.submit(j); err != nil {
		<-s.admit
		return result{}, err
	}
	var failed error // the first failure of onStart or onText
	for {
		var ev event
		if j.state.Load() == jobQueued {
			select {
			case ev = <-j.events:
			case <-ctx.Done():
				if j.state.CompareAndSwap(jobQueued, jobAbandoned) {
					<-s.admit
					return result{}, context.Cause(ctx)
				}
				continue
			case <-s.draining:
				if j.state.CompareAndSwap(jobQueued, jobAbandoned) {
					<-s.admit
					return result{}, errDraining
				}
				continue
			case <-s.sched.done:
				if j.state.CompareAndSwap(jobQueued, jobAbandoned) {
					return result{}, errClosed
				}
				continue
			}
		} else {
			select {
			case ev = <-j.events:
			case <-s.sched.done:
				// The scheduler stopped (Close); it sent every event it
				// had for j before, so an empty channel means it never
				// saw j.
				select {
				case ev = <-j.events:
				default:
					return result{}, errClosed
				}
			}
		}
		switch ev.kind {
		case evStarted:
			if onStart != nil && failed == nil {
				if err := onStart(); err != nil {
					failed = errWrite{err}
					cancel()
				}
			}
		case evText:
			if failed == nil {
				if err := onText(ev.piece); err != nil {
					failed = errWrite{err}
					cancel()
				}
			}
		case evDone:
			res := result{reason: ev.reason, usage: ev.usage}
			switch {
			case failed != nil:
				return res, failed
			case ev.err != nil && ctx.Err() != nil:
				return res, context.Cause(ctx)
			}
			return res, ev.err
		}
	}
}

// sse writes server-sent events, extending the write deadline per event so
// that WriteTimeout bounds each write and not the whole stream.
type sse struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	started bool
}

func (s *Server) newSSE(w http.ResponseWriter) *sse {
	return &sse{w: w, rc: http.NewResponseController(w), timeout: s.opts.WriteTimeout}
}

func (e *sse) start() {
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	e.w.WriteHeader(http.StatusOK)
	e.started = true
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
func (s *Server) finishJSON(w http.ResponseWriter, v any) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	writeJSON(w, http.StatusOK, v)
}

// failed answers a generation that ended with err: an error answer if
// nothing was sent yet, else an error event if the client is still there.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, e *sse, err error) {
	var we errWrite
	// Serve cancels the requests still running at its shutdown timeout
	// with errShutdownTimeout: their clients are there, and are told.
	shutdown := errors.Is(context.Cause(r.Context()), errShutdownTimeout)
	if !shutdown && (r.Context().Err() != nil || errors.As(err, &we)) {
		if e == nil || !e.started {
			writeError(w, 499, "invalid_request_error", "client_closed_request", "", "the client closed the request")
		}
		return // the client is gone (or shutdown gave up): nothing to say
	}
	status, typ, code, msg := http.StatusInternalServerError, "server_error", "internal_error", "generation failed: "+err.Error()
	switch {
	case shutdown, errors.Is(err, errDraining), errors.Is(err, errClosed):
		status, code, msg = http.StatusServiceUnavailable, "shutting_down", "the server is shutting down"
	case errors.Is(err, errTimeout):
		status, code, msg = http.StatusGatewayTimeout, "timeout", fmt.Sprintf("the generation took longer than %v", s.opts.RequestTimeout)
	default:
		s.log.Error("generation failed", "err", err)
	}
	if e != nil && e.started {
		e.send(apiErrorBody{Error: apiError{Message: msg, Type: typ, Code: &code}})
		return
	}
	writeError(w, status, typ, code, "", msg)
}

func (s *Server) usage(g genParams, res result) *tokenUsage {
	u := &tokenUsage{PromptTokens: len(g.prompt), CompletionTokens: res.usage.CompletionTokens,
		TotalTokens: len(g.prompt) + res.usage.CompletionTokens}
	u.PromptTokensDetails = &promptTokensDetails{CachedTokens: res.usage.CachedTokens}
	return u
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	g, ok := s.admitRequest(w, r, s.parseCompletion)
	if !ok {
		return
	}
	info := infoFrom(r.Context())
	id, created := newID("cmpl-"), time.Now().Unix()
	chunk := func(text string, lp *completionLogprobs, finish *string) completionResponse {
		return completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.modelID,
			Choices: []completionChoice{{Index: 0, Text: text, Logprobs: lp, FinishReason: finish}}}
	}
	// newLogprobs is the logprobs object of a response or chunk: null
	// unless asked for.
	newLogprobs := func() *completionLogprobs {
		if !g.logprobs {
			return nil
		}
		return &completionLogprobs{Tokens: []string{}, TokenLogprobs: []float32{}, TextOffset: []int{}}
	}
	if !g.stream {
		var text strings.Builder
		lp := newLogprobs()
		res, err := s.generate(r.Context(), g, nil, func(p piece) error {
			s.addCompletionLogprob(lp, p.tok, text.Len(), g.topLogprobs)
			text.Write(p.text)
			return nil
		})
		info.completionTokens, info.cachedTokens, info.finish = res.usage.CompletionTokens, res.usage.CachedTokens, res.finish()
		if err != nil {
			s.failed(w, r, nil, err)
			return
		}
		finish := res.finish()
		resp := chunk(text.String(), lp, &finish)
		resp.Usage = s.usage(g, res)
		s.finishJSON(w, resp)
		return
	}
	e := s.newSSE(w)
	offset := 0
	res, err := s.generate(r.Context(), g, func() error { e.start(); return nil },
		func(p piece) error {
			lp := newLogprobs()
			s.addCompletionLogprob(lp, p.tok, offset, g.topLogprobs)
			offset += len(p.text)
			return e.send(chunk(string(p.text), lp, nil))
		})
	info.completionTokens, info.cachedTokens, info.finish = res.usage.CompletionTokens, res.usage.CachedTokens, res.finish()
	if err != nil {
		s.failed(w, r, e, err)
		return
	}
	finish := res.finish()
	if e.send(chunk("", nil, &finish)) != nil {
		return
	}
	if g.usage {
		last := chunk("", nil, nil)
		last.Choices, last.Usage = []completionChoice{}, s.usage(g, res)
		if e.send(last) != nil {
			return
		}
	}
	e.send(nil)
}

func (s *Server) modelObject() modelObject {
	return modelObject{ID: s.modelID, Object: "model", Created: s.created, OwnedBy: "llama2-go"}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Object string        `json:"object"`
		Data   []modelObject `json:"data"`
	}{"list", []modelObject{s.modelObject()}})
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); id != s.modelID {
		writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found", "model",
			fmt.Sprintf("the model %q does not exist; this server has %q", id, s.modelID))
		return
	}
	writeJSON(w, http.StatusOK, s.modelObject())
}
