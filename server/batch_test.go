package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/tokenizer"
)

// TestServeSameAloneAndAlongside7: a seeded request's text is the same
// alone and decoded in one batch with seven others, streamed or not.
func TestServeSameAloneAndAlongside7(t *testing.T) {
	o := testOptions()
	o.Parallel, o.Queue = 8, 8
	s, _ := newTestServer(t, o, nil)
	url, c := startHTTP(t, s)
	body := `{"prompt":"The little dog","seed":4242,"max_tokens":120,"temperature":0.9,"top_p":0.95}`
	alone := complete(t, c, url, "/v1/completions", body).text()
	require.NotEmpty(t, alone)

	var wg sync.WaitGroup
	var together, streamed string
	errs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() {
			switch i {
			case 0:
				var out completionOut
				out, errs[i] = completeE(c, url, "/v1/completions", body)
				if errs[i] == nil {
					together = out.text()
				}
			case 1:
				var events []completionOut
				events, _, errs[i] = streamE(c, url, "/v1/completions", strings.TrimSuffix(body, "}")+`,"stream":true}`)
				streamed = streamedText(events)
			default:
				_, errs[i] = completeE(c, url, "/v1/completions", fmt.Sprintf(`{"prompt":"Story %d","seed":%d,"max_tokens":150,"temperature":1}`, i, i))
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "request %d", i)
	}
	require.Equal(t, alone, together)
	require.Equal(t, alone, streamed)
	batched := metricValue(t, s, "llama2_batch_size_count") - metricValue(t, s, `llama2_batch_size_bucket{le="1"}`)
	require.Positive(t, batched, "some steps decoded several sequences")
}

// TestServeLongPromptInterleaved: a long prompt is prefilled a chunk at a
// time between the decode steps of a running stream, which never waits for
// more than one chunk.
func TestServeLongPromptInterleaved(t *testing.T) {
	o := testOptions()
	o.Batch = 16
	var mu sync.Mutex
	var log []string // "t": a token of the running stream, "p": a prefilled chunk of the long prompt
	var streamCtx context.Context
	started := make(chan struct{})
	s, _ := newTestServer(t, o, nil)
	s.onToken = func(ctx context.Context) {
		mu.Lock()
		defer mu.Unlock()
		if streamCtx == nil {
			streamCtx = ctx
			close(started)
		}
		if ctx == streamCtx {
			log = append(log, "t")
		}
		time.Sleep(time.Millisecond)
	}
	s.onPrefill = func(ctx context.Context, pending int) {
		mu.Lock()
		defer mu.Unlock()
		if streamCtx != nil && ctx != streamCtx {
			log = append(log, "p")
		}
	}
	url, c := startHTTP(t, s)
	done := make(chan error, 1)
	go func() {
		_, _, err := streamE(c, url, "/v1/completions", `{"prompt":"Once","max_tokens":400,"temperature":1,"seed":3,"stream":true}`)
		done <- err
	}()
	<-started
	long := strings.Repeat("Once upon a time there was a girl. ", 40)
	n := len(s.tok.Encode(long, true, false))
	out := complete(t, c, url, "/v1/completions", fmt.Sprintf(`{"prompt":%q,"max_tokens":4}`, long))
	require.Equal(t, n, out.Usage.PromptTokens)
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	joined := strings.Join(log, "")
	require.Equal(t, (n-1+o.Batch-1)/o.Batch, strings.Count(joined, "p"), "the prompt in chunks of %d: %s", o.Batch, joined)
	require.NotContains(t, joined, "pp", "a stream waits for one chunk at most between two tokens: %s", joined)
}

// metricValue reads one sample from GET /metrics.
func metricValue(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			_, err := fmt.Sscan(v, &f)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// TestServeMetrics: /metrics counts requests by status, tokens, and holds
// the batching and latency histograms.
func TestServeMetrics(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)
	out := complete(t, c, url, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":7,"temperature":0}`)
	out2 := complete(t, c, url, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":7,"temperature":0}`)
	require.Equal(t, out.Usage.PromptTokens-1, out2.Usage.PromptTokensDetails.CachedTokens)
	status, _ := post(t, c, url+"/v1/completions", `{"prompt":"a","temperature":-1}`)
	require.Equal(t, 400, status)

	require.Equal(t, 2.0, metricValue(t, s, `llama2_requests_total{path="/v1/completions",status="200"}`))
	require.Equal(t, 1.0, metricValue(t, s, `llama2_requests_total{path="/v1/completions",status="400"}`))
	require.Equal(t, 14.0, metricValue(t, s, "llama2_completion_tokens_total"))
	require.Equal(t, float64(2*out.Usage.PromptTokens), metricValue(t, s, "llama2_prompt_tokens_total"))
	require.Equal(t, float64(out.Usage.PromptTokens-1), metricValue(t, s, "llama2_prompt_cached_tokens_total"))
	require.Equal(t, 2.0, metricValue(t, s, "llama2_time_to_first_token_seconds_count"))
	require.Equal(t, 12.0, metricValue(t, s, "llama2_time_per_output_token_seconds_count"))
	require.Equal(t, 14.0, metricValue(t, s, "llama2_batch_size_count"))
	require.Equal(t, 0.0, metricValue(t, s, "llama2_queue_depth"))
	require.Equal(t, 0.0, metricValue(t, s, "llama2_active_slots"))
	require.Equal(t, 2.0, metricValue(t, s, "llama2_slots"))
	require.Positive(t, metricValue(t, s, "go_goroutines"))
	resp, err := c.Get(url + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Regexp(t, `^text/plain; version=0\.0\.4`, resp.Header.Get("Content-Type"))
}

// TestServeRequestTimeout: a generation longer than RequestTimeout ends
// with 504 (or an error event once streaming), and frees its slot.
func TestServeRequestTimeout(t *testing.T) {
	o := testOptions()
	o.RequestTimeout = 100 * time.Millisecond
	s, _ := newTestServer(t, o, func(context.Context) { time.Sleep(5 * time.Millisecond) })
	url, c := startHTTP(t, s)
	status, b := post(t, c, url+"/v1/completions", `{"prompt":"Once","max_tokens":500}`)
	require.Equal(t, http.StatusGatewayTimeout, status, "%s", b)
	timeout := `{"error":{"message":"the generation took longer than 100ms","type":"server_error","param":null,"code":"timeout"}}`
	require.JSONEq(t, timeout, string(b))
	// A stream has sent its status and some text: the timeout is its last
	// event, without [DONE].
	resp, err := c.Post(url+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"Once","max_tokens":500,"stream":true}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
	require.Greater(t, len(events), 1, "text before the timeout")
	for _, ev := range events[:len(events)-1] {
		require.Regexp(t, `^data: \{"id":"cmpl-[a-z0-9]+","object":"text_completion",.*"finish_reason":null\}\]\}$`, ev)
	}
	require.JSONEq(t, timeout, strings.TrimPrefix(events[len(events)-1], "data: "))
	waitFor(t, "the slots free", func() bool { return len(s.admit) == 0 })
}

// TestServeCloseLeavesNoGoroutine: after Close, every goroutine the server
// started (scheduler, session and batch workers) is gone; the model can be
// closed and reopened.
func TestServeCloseLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	m, err := model.Open(fixture(t, "stories260K.bin"))
	require.NoError(t, err)
	tok, err := tokenizer.Load(fixture(t, "tok512.bin"), m.Config.VocabSize)
	require.NoError(t, err)
	s, err := New(m, tok, Options{Parallel: 4, Threads: 2, Queue: 4})
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	for i := range 3 {
		complete(t, c, ts.URL, "/v1/completions", fmt.Sprintf(`{"prompt":"Hi","max_tokens":20,"seed":%d}`, i+1))
	}
	tr.CloseIdleConnections()
	ts.Close()
	require.NoError(t, s.Close())
	require.NoError(t, m.Close())
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestNewOptions(t *testing.T) {
	m, err := model.Open(fixture(t, "stories260K.bin"))
	require.NoError(t, err)
	defer m.Close()
	tok, err := tokenizer.Load(fixture(t, "tok512.bin"), m.Config.VocabSize)
	require.NoError(t, err)
	per := KVBytesPerSlot(m, model.KVF32, model.KVF32)
	require.Equal(t, int64(512*5*32*8), per)

	_, err = New(m, tok, Options{KVCacheBytes: per - 1})
	require.ErrorContains(t, err, "does not hold one slot")
	_, err = New(m, tok, Options{KVCacheBytes: 2 * per, Parallel: 3})
	require.ErrorContains(t, err, "3 slots need")
	_, err = New(m, tok, Options{Parallel: -1})
	require.Error(t, err)
	s, err := New(m, tok, Options{KVCacheBytes: 3 * per})
	require.NoError(t, err)
	defer s.Close()
	o := s.Options()
	require.Equal(t, 3, o.Parallel, "the default 8 slots, cut to the budget")
	require.Equal(t, runtime.NumCPU(), o.Threads)
	require.Equal(t, model.DefaultBatch, o.Batch)
	require.Equal(t, 60*time.Second, o.WriteTimeout)
	_, err = New(m, tok, Options{ChatTemplate: "{% if %}"})
	require.ErrorContains(t, err, "chat template")

	// A float16 cache takes half the bytes: the same budget holds twice
	// the slots. Q8_0 needs a head size that is a multiple of 32 (this
	// model's is 8).
	half := KVBytesPerSlot(m, model.KVF16, model.KVF16)
	require.Equal(t, per/2, half)
	s16, err := New(m, tok, Options{KVCacheBytes: 3 * per, KeyCache: model.KVF16, ValueCache: model.KVF16})
	require.NoError(t, err)
	defer s16.Close()
	require.Equal(t, 6, s16.Options().Parallel)
	_, err = New(m, tok, Options{ValueCache: model.KVQ8_0})
	require.ErrorContains(t, err, "cache type q8_0 needs a head size that is a multiple of 32, not 8")
}

// TestServeKVTypes: a greedy completion through float16 caches is the
// float32 caches' one on this model (ExampleKVType's story).
func TestServeKVTypes(t *testing.T) {
	texts := map[model.KVType]string{}
	for _, kv := range []model.KVType{model.KVF32, model.KVF16} {
		o := testOptions()
		o.KeyCache, o.ValueCache = kv, kv
		s, _ := newTestServer(t, o, nil)
		ts := httptest.NewServer(s)
		code, body := post(t, ts.Client(), ts.URL+"/v1/completions", `{"prompt":"Once upon a time","max_tokens":24,"temperature":0}`)
		ts.Close()
		require.Equal(t, http.StatusOK, code, "%s", body)
		var r struct {
			Choices []struct{ Text string } `json:"choices"`
		}
		require.NoError(t, json.Unmarshal(body, &r))
		texts[kv] = r.Choices[0].Text
	}
	require.NotEmpty(t, texts[model.KVF32])
	require.Equal(t, texts[model.KVF32], texts[model.KVF16])
}
