package server

// Clients that stop sending: a request body that stalls is cut off by the
// read timeout on every path (a body that fails to parse too), and shutdown
// does not wait for it.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serveOn runs s.Serve on a fresh listener until the test ends (or stop is
// called) and returns the address and a function that stops serving and
// returns Serve's error.
func serveOn(t *testing.T, s *Server) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() { stop() })
	return ln.Addr().String(), stop
}

// stalledRequest sends the head of a POST whose Content-Length promises
// more body than it sends, and returns the connection.
func stalledRequest(t *testing.T, addr, path, partial string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"+
		"Content-Length: 1000\r\n\r\n"+partial)
	require.NoError(t, err)
	return conn
}

// readAnswer reads one response from conn, failing if none comes within
// limit: a connection held open without an answer is the defect.
func readAnswer(t *testing.T, conn net.Conn, limit time.Duration) (*http.Response, apiErrorBody) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(limit)))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err, "no answer within %v", limit)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	var body apiErrorBody
	require.NoError(t, json.Unmarshal(b, &body), "%s", b)
	// The server closes the connection after the answer: the rest of the
	// body is not read, so nothing after it could be parsed as a request.
	_, err = br.ReadByte()
	requireClosed(t, err, "the connection stays open")
	return resp, body
}

// requireClosed fails unless err, from a read, says the peer closed the
// connection: a FIN (EOF), or a reset when the server closed it with bytes
// it had not read (seen once in CI). A timeout or data fails.
func requireClosed(t *testing.T, err error, msg string) {
	t.Helper()
	require.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "%s: %v", msg, err)
}

// TestServeStalledBody: a body that stops arriving is answered 408 once
// the read timeout passes, whether the part received parses or not, on
// every endpoint that reads a body, and the connection is closed.
func TestServeStalledBody(t *testing.T) {
	o := testOptions()
	o.ReadTimeout = 300 * time.Millisecond
	s, logs := newTestServer(t, o, nil)
	addr, _ := serveOn(t, s)
	partials := map[string][]string{
		"/v1/completions":      {`{"prompt":"a`, `{"prompt":`, ``, `{"prompt": 5,`},
		"/v1/chat/completions": {`{"messages":[{"role":"u`, `{"messages":`, ``, `{"max_tokens": 5,`},
		"/apply-template":      {`{"messages":[{"role":"u`, `{"messages":`, ``, `{"messages": [],`},
	}
	for _, path := range []string{"/v1/completions", "/v1/chat/completions", "/apply-template"} {
		for _, partial := range partials[path] {
			t.Run(strings.TrimPrefix(path, "/")+"/"+partial, func(t *testing.T) {
				start := time.Now()
				conn := stalledRequest(t, addr, path, partial)
				resp, body := readAnswer(t, conn, 10*time.Second)
				require.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
				require.True(t, resp.Close, "Connection: close")
				require.Equal(t, "request_timeout", *body.Error.Code)
				require.Equal(t, "invalid_request_error", body.Error.Type)
				require.Equal(t, "the request body did not arrive within the read timeout (300ms)", body.Error.Message)
				require.GreaterOrEqual(t, time.Since(start), o.ReadTimeout, "answered before the read timeout")
			})
		}
	}
	waitFor(t, "the log lines", func() bool { return len(logLines(logs.String(), "status=408")) == 12 })
}

// TestServeBadBodyWithMoreToCome: a body whose first bytes are already
// invalid is answered at once (400), without waiting for the rest, and the
// connection is closed.
func TestServeBadBodyWithMoreToCome(t *testing.T) {
	o := testOptions()
	o.ReadTimeout = time.Minute
	s, _ := newTestServer(t, o, nil)
	addr, _ := serveOn(t, s)
	conn := stalledRequest(t, addr, "/v1/completions", `{"prompt": ]`)
	resp, body := readAnswer(t, conn, 10*time.Second)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "invalid_json", *body.Error.Code)
	require.Contains(t, body.Error.Message, "malformed JSON at byte 11") // the ']'

}

// TestServeShutdownStalledReader: shutdown answers a request whose body
// is still arriving 503 at once, closes a connection whose header is
// still arriving, and returns without waiting for the read timeout (a
// minute here) or the shutdown timeout.
func TestServeShutdownStalledReader(t *testing.T) {
	o := testOptions()
	o.ReadTimeout, o.ShutdownTimeout = time.Minute, time.Minute
	s, logs := newTestServer(t, o, nil)
	addr, stop := serveOn(t, s)
	body := stalledRequest(t, addr, "/v1/completions", `{"prompt":"a`)
	waitFor(t, "the body being read", func() bool { return s.reading.Load() == 1 })
	head, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer head.Close()
	_, err = io.WriteString(head, "POST /v1/completions HTTP/1.1\r\nHost: te")
	require.NoError(t, err)
	waitFor(t, "the connection accepted", func() bool { return s.freshConns() == 1 })

	// http.Server.Shutdown alone would wait 5 s for the connection whose
	// header is arriving (then count it as idle) and the read timeout for
	// the body; cut off, both end at once (Shutdown polls the connections
	// at up to 500 ms intervals).
	start := time.Now()
	limit := 4 * time.Second
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	resp, e := readAnswer(t, body, limit)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "server_error", e.Error.Type)
	require.Equal(t, "shutting_down", *e.Error.Code)
	require.Equal(t, "the server is shutting down", e.Error.Message)
	require.NoError(t, head.SetReadDeadline(start.Add(limit)))
	_, err = head.Read(make([]byte, 1))
	requireClosed(t, err, "the half-sent request's connection is not closed")
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(time.Until(start.Add(limit))):
		t.Fatal("Serve waits for the stalled readers")
	}
	t.Logf("Serve returned %v after shutdown began", time.Since(start))
	require.Len(t, logLines(logs.String(), "status=503"), 1)
}
