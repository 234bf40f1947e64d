package server

// Admission, disconnects, panics, slow clients and shutdown.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gate is a token hook that holds generations until released.
type gate struct {
	entered chan struct{} // one value per generation reaching its first token
	release chan struct{}
	tokens  atomic.Int64
	once    sync.Map
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 64), release: make(chan struct{})}
}

func (g *gate) hook(ctx context.Context) {
	g.tokens.Add(1)
	if _, loaded := g.once.LoadOrStore(ctx, true); !loaded {
		g.entered <- struct{}{}
	}
	select {
	case <-g.release:
	case <-ctx.Done():
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServeQueueFull(t *testing.T) {
	o := testOptions()
	o.Parallel, o.Queue = 1, 1
	g := newGate()
	s, _ := newTestServer(t, o, g.hook)
	url, c := startHTTP(t, s)

	body := `{"prompt":"Once upon a time","max_tokens":5,"temperature":0}`
	var wg sync.WaitGroup
	statuses, errs := make([]int, 2), make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, errs[i] = postE(c, url+"/v1/completions", body)
		}()
		if i == 0 {
			<-g.entered // the first one generates (and is held)
		}
	}
	waitFor(t, "a request in the queue", func() bool { return len(s.admit) == 2 })

	status, b := post(t, c, url+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusTooManyRequests, status)
	require.JSONEq(t, `{"error":{"message":"the server is busy (generating: 1, queued: 1); retry later","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`, string(b))

	close(g.release)
	wg.Wait()
	require.Equal(t, []error{nil, nil}, errs)
	require.Equal(t, []int{200, 200}, statuses)
	waitFor(t, "the slot free", func() bool { return len(s.admit) == 0 })
}

// TestServeDisconnect: a client that goes away, mid-stream or while waiting
// for a whole answer, stops its generation at the next token (logged as
// 499 when nothing was sent); the session returns to the pool and no
// goroutine is left behind.
func TestServeDisconnect(t *testing.T) {
	o := testOptions()
	o.Parallel = 1
	var tokens atomic.Int64
	s, logs := newTestServer(t, o, func(ctx context.Context) {
		tokens.Add(1)
		time.Sleep(2 * time.Millisecond) // slow enough to disconnect mid-way
	})
	ts := httptest.NewServer(s)
	defer ts.Close()
	before := runtime.NumGoroutine()

	for _, streamed := range []bool{true, false} {
		for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
			tokens.Store(0)
			tr := &http.Transport{}
			ctx, cancel := context.WithCancel(context.Background())
			body := fmt.Sprintf(`{"prompt":"Once upon a time","max_tokens":500,"temperature":1.5,"top_p":1,"seed":5,"stream":%v}`, streamed)
			if path == "/v1/chat/completions" {
				body = strings.Replace(body, `"prompt":"Once upon a time"`, `"messages":[{"role":"user","content":"hi"}]`, 1)
			}
			req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+path, strings.NewReader(body))
			if streamed {
				resp, err := (&http.Client{Transport: tr}).Do(req)
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				line, err := bufio.NewReader(resp.Body).ReadString('\n')
				require.NoError(t, err)
				require.True(t, strings.HasPrefix(line, "data: {"))
				cancel()
				resp.Body.Close()
			} else {
				errc := make(chan error, 1)
				go func() {
					resp, err := (&http.Client{Transport: tr}).Do(req)
					if err == nil {
						resp.Body.Close()
					}
					errc <- err
				}()
				waitFor(t, "the generation under way", func() bool { return tokens.Load() >= 5 })
				cancel()
				require.ErrorIs(t, <-errc, context.Canceled)
				waitFor(t, "the log line", func() bool { return len(logLines(logs.String(), "path="+path, "status=499")) == 1 })
			}
			tr.CloseIdleConnections()

			waitFor(t, "the slot free", func() bool { return len(s.admit) == 0 })
			n := tokens.Load()
			require.Less(t, n, int64(400), "the generation stopped early")
			time.Sleep(50 * time.Millisecond)
			require.Equal(t, n, tokens.Load(), "no token after the generation stopped")
		}
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestServePanicRecovered(t *testing.T) {
	s, logs := newTestServer(t, testOptions(), nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	mux.Handle("/", s)
	ts := httptest.NewServer(s.middleware(mux))
	defer ts.Close()

	for range 3 {
		resp, err := http.Get(ts.URL + "/boom")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		require.JSONEq(t, `{"error":{"message":"internal server error","type":"server_error","param":null,"code":"internal_error"}}`, string(b))
	}
	resp, err := http.Get(ts.URL + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "still serving")
	require.Contains(t, logs.String(), `msg="panic in handler" method=GET path=/boom panic=kaboom stack=`)
	require.Contains(t, logs.String(), `path=/boom status=500`)
}

// TestServeSlowStream: the write timeout bounds each write, not the stream,
// and the read timeout does not cancel a generation that outlasts it.
func TestServeSlowStream(t *testing.T) {
	o := testOptions()
	o.WriteTimeout, o.ReadTimeout = 150*time.Millisecond, 150*time.Millisecond
	s, _ := newTestServer(t, o, func(context.Context) { time.Sleep(10 * time.Millisecond) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	url := "http://" + ln.Addr().String()
	c := &http.Client{Transport: &http.Transport{}}

	body := `{"prompt":"Once upon a time","max_tokens":60,"temperature":0`
	events, ok := stream(t, c, url, "/v1/completions", body+`,"stream":true}`)
	require.True(t, ok, "the stream outlived the write timeout")
	require.Equal(t, "length", *events[len(events)-1].Choices[0].FinishReason)
	out := complete(t, c, url, "/v1/completions", body+"}")
	require.Equal(t, streamedText(events), out.text())
}

// TestServeShutdown: on shutdown, the stream in flight finishes, queued
// requests get 503 and new connections are refused.
func TestServeShutdown(t *testing.T) {
	o := testOptions()
	o.Parallel, o.Queue = 1, 4
	g := newGate()
	s, logs := newTestServer(t, o, g.hook)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	url := "http://" + addr

	type result struct {
		events []completionOut
		done   bool
		err    error
	}
	streamed := make(chan result, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{}}
		ev, ok, err := streamE(c, url, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":30,"stream":true,"seed":1}`)
		streamed <- result{ev, ok, err}
	}()
	<-g.entered
	type answer struct {
		status int
		body   []byte
		err    error
	}
	queued := make(chan answer, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{}}
		status, b, err := postE(c, url+"/v1/completions", `{"prompt":"a"}`)
		queued <- answer{status, b, err}
	}()
	waitFor(t, "a queued request", func() bool { return len(s.admit) == 2 })

	cancel()
	a := <-queued
	require.NoError(t, a.err)
	require.Equal(t, http.StatusServiceUnavailable, a.status)
	require.JSONEq(t, `{"error":{"message":"the server is shutting down","type":"server_error","param":null,"code":"shutting_down"}}`, string(a.body))
	waitFor(t, "the listener to close", func() bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	select {
	case <-done:
		t.Fatal("serve returned while a stream was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(g.release)
	r := <-streamed
	require.NoError(t, r.err)
	require.True(t, r.done, "the stream finished with [DONE]")
	require.Equal(t, "length", *r.events[len(r.events)-1].Choices[0].FinishReason)
	require.NoError(t, <-done)
	require.Contains(t, logs.String(), `msg="shutting down"`)
	require.Contains(t, logs.String(), `msg=stopped`)
}

// TestServeShutdownTimeout: a generation still running at the shutdown
// timeout is cancelled, its client is told so (503, or an error event
// ending the stream), and serve returns.
func TestServeShutdownTimeout(t *testing.T) {
	const shuttingDown = `{"error":{"message":"the server is shutting down","type":"server_error","param":null,"code":"shutting_down"}}`
	for _, streamed := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", streamed), func(t *testing.T) {
			o := testOptions()
			o.ShutdownTimeout = 100 * time.Millisecond
			g := newGate() // never released: only cancellation ends the hold
			s, _ := newTestServer(t, o, g.hook)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx, ln) }()
			type received struct {
				status       int
				body         string
				err, readErr error
			}
			got := make(chan received, 1)
			go func() {
				resp, err := http.Post("http://"+ln.Addr().String()+"/v1/completions", "application/json",
					strings.NewReader(fmt.Sprintf(`{"prompt":"a","stream":%v}`, streamed)))
				if err != nil {
					got <- received{err: err}
					return
				}
				b, readErr := io.ReadAll(resp.Body)
				resp.Body.Close()
				got <- received{resp.StatusCode, string(b), nil, readErr}
			}()
			<-g.entered
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not return after the shutdown timeout")
			}
			waitFor(t, "the slot free", func() bool { return len(s.admit) == 0 })
			r := <-got
			require.NoError(t, r.err)
			require.NoError(t, r.readErr)
			if !streamed {
				require.Equal(t, http.StatusServiceUnavailable, r.status)
				require.JSONEq(t, shuttingDown, r.body)
				return
			}
			// The status was sent when the stream started; the error is
			// its last event, without [DONE].
			require.Equal(t, http.StatusOK, r.status)
			events := strings.Split(strings.TrimSuffix(r.body, "\n\n"), "\n\n")
			for _, ev := range events[:len(events)-1] {
				require.Regexp(t, `^data: \{"id":"cmpl-[a-z0-9]+","object":"text_completion",.*"finish_reason":null\}\]\}$`, ev)
			}
			require.Equal(t, "data: "+shuttingDown, events[len(events)-1])
		})
	}
}
