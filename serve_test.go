package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/internal/testfixture"
	"github.com/llama2-go/llama2/model"
)

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

func TestParseServeArgs(t *testing.T) {
	o, err := parseServeArgs([]string{"m.bin"})
	require.NoError(t, err)
	require.Equal(t, serveOptions{checkpoint: "m.bin", tokenizer: "tokenizer.bin", addr: "127.0.0.1:8080", kvCacheMiB: 4096,
		batch: model.DefaultBatch, queue: 16, readTimeout: 30 * time.Second, writeTimeout: 60 * time.Second, shutdownTimeout: 30 * time.Second, logFormat: "text",
		templateLimits: chat.DefaultLimits}, o,
		"parallel and threads 0: the server's defaults (8 slots, all cores)")

	o, err = parseServeArgs([]string{"m.bin", "-parallel", "3", "-threads", "2", "-queue", "0", "-z", "t.bin", "-addr", "127.0.0.1:0",
		"-log-format", "json", "-q8", "-kv-cache-mib", "100", "-request-timeout", "5s", "-read-timeout", "2s"})
	require.NoError(t, err)
	require.Equal(t, serveOptions{checkpoint: "m.bin", tokenizer: "t.bin", tokenizerSet: true, addr: "127.0.0.1:0", parallel: 3, threads: 2,
		batch: model.DefaultBatch, kvCacheMiB: 100, requestTimeout: 5 * time.Second,
		queue: 0, readTimeout: 2 * time.Second, writeTimeout: 60 * time.Second, shutdownTimeout: 30 * time.Second, logFormat: "json", q8: true,
		templateLimits: chat.DefaultLimits}, o)

	// The template limits, each settable; 0 lifts one.
	o, err = parseServeArgs([]string{"m.bin", "-template-timeout", "5s", "-template-max-steps", "7", "-template-max-depth", "0",
		"-template-max-output-kib", "2", "-template-max-memory-mib", "3"})
	require.NoError(t, err)
	require.Equal(t, chat.Limits{Timeout: 5 * time.Second, MaxSteps: 7, MaxDepth: -1, MaxOutputBytes: 2048, MaxMemoryBytes: 3 << 20}, o.templateLimits)

	for _, bad := range [][]string{{}, {"m.bin", "x"}, {"m.bin", "-parallel", "-1"}, {"m.bin", "-queue", "-1"},
		{"m.bin", "-threads", "-1"}, {"m.bin", "-batch", "0"}, {"m.bin", "-log-format", "xml"}, {"m.bin", "-nope"},
		{"m.bin", "-write-timeout", "0s"}, {"m.bin", "-read-timeout", "0s"}, {"m.bin", "-kv-cache-mib", "0"}, {"m.bin", "-request-timeout", "-1s"}, {"m.bin", "-ctk", "q4"}} {
		_, err := parseServeArgs(bad)
		require.Error(t, err, bad)
	}
}

func TestRunServeUsageAndErrors(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "serve", "-h")
	require.Equal(t, 0, code)
	require.Contains(t, stdout, "Usage: llama2 serve")
	require.Empty(t, stderr)

	code, stdout, stderr = runCLI(t, "", "serve")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "no checkpoint given")

	code, stdout, stderr = runCLI(t, "", "serve", "missing.bin")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "missing.bin")

	_, stdout, _ = runCLI(t, "", "-h")
	require.Contains(t, stdout, "llama2 serve")
}

// TestRunServe drives the real subcommand: flags, listening, a request, and
// a clean exit when its context is cancelled; nothing goes to stdout. With
// -q8 the fp32 model is quantized at load (its greedy start is the same).
func TestRunServe(t *testing.T) {
	for _, extra := range [][]string{nil, {"-q8"}} {
		t.Run(strings.Join(append([]string{"args"}, extra...), " "), func(t *testing.T) { testRunServe(t, extra) })
	}
}

func testRunServe(t *testing.T, extra []string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout bytes.Buffer
	stderr := &testfixture.SyncBuffer{}
	exit := make(chan int, 1)
	args := append([]string{fixture(t, "stories260K.bin"), "-z", fixture(t, "tok512.bin"),
		"-addr", "127.0.0.1:0", "-parallel", "2", "-log-format", "json"}, extra...)
	go func() { exit <- runServe(ctx, args, &stdout, stderr) }()
	addrRe := regexp.MustCompile(`"addr":"(127\.0\.0\.1:\d+)"`)
	var addr string
	waitFor(t, "the listening line", func() bool {
		m := addrRe.FindStringSubmatch(stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	c := &http.Client{Transport: &http.Transport{}}
	resp, err := c.Post("http://"+addr+"/v1/completions", "application/json",
		strings.NewReader(`{"prompt":"Once upon a time","max_tokens":8,"temperature":0}`))
	require.NoError(t, err)
	var out struct {
		Choices []struct{ Text string }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, ", there was a little girl", out.Choices[0].Text)
	cancel()
	require.Equal(t, 0, <-exit)
	require.Empty(t, stdout.String())
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		require.True(t, json.Valid([]byte(line)), line)
	}
	require.Contains(t, stderr.String(), `"msg":"request","method":"POST","path":"/v1/completions","status":200,"prompt_tokens":5,"completion_tokens":8`)
}
