// Helpers of the server tests: a server on a fixture model, HTTP calls,
// and decoding of streamed completions.

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/internal/testfixture"
	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
)

func testOptions() Options {
	return Options{Parallel: 2, Threads: 1, Batch: model.DefaultBatch, Queue: 4,
		WriteTimeout: 10 * time.Second, ShutdownTimeout: 10 * time.Second}
}

// newTestServer builds a server over stories260K; tweak may set options and
// hooks before the sessions are made.
func newTestServer(t testing.TB, o Options, hook func(ctx context.Context)) (*Server, *testfixture.SyncBuffer) {
	t.Helper()
	m, err := model.Open(fixture(t, "stories260K.bin"))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	tok, err := tokenizer.Load(fixture(t, "tok512.bin"), m.Config.VocabSize)
	require.NoError(t, err)
	logs := &testfixture.SyncBuffer{}
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s, err := New(m, tok, o)
	require.NoError(t, err)
	s.onToken = hook
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// fixture returns ../testdata/name; missing fixtures skip locally and fail
// in CI.
func fixture(tb testing.TB, name string) string {
	tb.Helper()
	path := filepath.Join("..", "testdata", name)
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("fixture %s is missing (run `make fixtures`): %v", path, err)
		}
		tb.Skipf("fixture %s is missing (run `make fixtures`)", path)
	}
	return path
}

// cliText is the text the CLI prints after prompt for a greedy run of
// steps positions: Session.Generate's loop, which the main package checks
// byte for byte against llama2.c's goldens.
func cliText(t *testing.T, s *Server, prompt string, steps int) string {
	sess, err := s.model.NewSession(model.SessionOptions{Threads: 1})
	require.NoError(t, err)
	defer sess.Close()
	tokens := s.tok.Encode(prompt, true, false)
	dec := s.tok.NewTextDecoder()
	var out []byte
	_, err = sess.Generate(context.Background(), tokens, sample.New(s.model.Config.VocabSize, 0, 0, 1), steps,
		func(prev, next int) bool {
			out = dec.Append(out, prev, next)
			return true
		})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(out), prompt))
	return strings.TrimPrefix(string(out), prompt)
}

// startHTTP serves s with httptest and returns its URL and a client of its own.
func startHTTP(t *testing.T, s *Server) (string, *http.Client) {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return ts.URL, &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// The helpers below come in two forms: one that fails the test (for the
// test's goroutine) and one, named with an E, that returns an error (for
// goroutines the test starts, where t.FailNow must not be called: the
// test goroutine would wait forever instead of failing).

func post(t *testing.T, c *http.Client, url, body string) (int, []byte) {
	t.Helper()
	status, b, err := postE(c, url, body)
	require.NoError(t, err)
	return status, b
}

func postE(c *http.Client, url, body string) (int, []byte, error) {
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

type completionOut struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index        int             `json:"index"`
		Text         *string         `json:"text"`
		Message      *chatMessageOut `json:"message"`
		Delta        *chatDelta      `json:"delta"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	} `json:"choices"`
	Usage *tokenUsage `json:"usage"`
}

func (c completionOut) text() string {
	if m := c.Choices[0].Message; m != nil {
		if m.Content == nil {
			return ""
		}
		return *m.Content
	}
	return *c.Choices[0].Text
}

func complete(t *testing.T, c *http.Client, url, path, body string) completionOut {
	t.Helper()
	out, err := completeE(c, url, path, body)
	require.NoError(t, err)
	return out
}

func completeE(c *http.Client, url, path, body string) (completionOut, error) {
	var out completionOut
	status, b, err := postE(c, url+path, body)
	switch {
	case err != nil:
		return out, err
	case status != http.StatusOK:
		return out, fmt.Errorf("%s: status %d: %s", path, status, b)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("%s: %w: %s", path, err, b)
	}
	if len(out.Choices) != 1 {
		return out, fmt.Errorf("%s: %d choices: %s", path, len(out.Choices), b)
	}
	return out, nil
}

// stream posts a streaming request and returns its events, [DONE] last.
func stream(t *testing.T, c *http.Client, url, path, body string) ([]completionOut, bool) {
	t.Helper()
	events, done, err := streamE(c, url, path, body)
	require.NoError(t, err)
	return events, done
}

func streamE(c *http.Client, url, path, body string) ([]completionOut, bool, error) {
	resp, err := c.Post(url+path, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, false, fmt.Errorf("%s: status %d: %s", path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		return nil, false, fmt.Errorf("%s: Content-Type %q", path, ct)
	}
	var events []completionOut
	done := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if done {
			return events, done, fmt.Errorf("%s: data after [DONE]: %s", path, line)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			return events, done, fmt.Errorf("%s: not an event: %s", path, line)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var ev completionOut
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return events, done, fmt.Errorf("%s: %w: %s", path, err, data)
		}
		events = append(events, ev)
	}
	return events, done, sc.Err()
}

func streamedText(events []completionOut) string {
	var b strings.Builder
	for _, ev := range events {
		for _, ch := range ev.Choices {
			if ch.Text != nil {
				b.WriteString(*ch.Text)
			}
			if ch.Delta != nil && ch.Delta.Content != nil {
				b.WriteString(*ch.Delta.Content)
			}
		}
	}
	return b.String()
}

// logLines returns the lines of a log that contain every one of subs.
func logLines(log string, subs ...string) []string {
	var lines []string
	for line := range strings.Lines(log) {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			lines = append(lines, line)
		}
	}
	return lines
}
