// Command loadtest drives an OpenAI-compatible server (llama2 serve, or
// llama.cpp's llama-server for comparison) with closed-loop clients and
// reports throughput and latency, or checks that it stays reliable under a
// mix of streamed, cancelled and near-context-limit requests.
//
//	go run ./e2e/loadtest -url http://127.0.0.1:8080 -clients 1,4,8,16
//	go run ./e2e/loadtest -url http://127.0.0.1:8080 -mode reliability -ctx 1024
//
// Throughput: for each number of clients, every client sends completion
// requests one after the other (max_tokens, temperature 0.8, seeded) for
// -requests requests each; the report is the completion tokens per second of
// wall clock, and the median and 99th percentile of request latency.
//
// Reliability: -total requests, -concurrency at a time; a third streamed, a
// tenth of those cancelled mid-stream, a few with prompts near the context
// limit. Every answer must be well formed (a JSON completion with usage and
// finish_reason, or a stream ending in [DONE]); none may be lost; the
// server's goroutines (from /metrics, llama2 serve only) must come back to
// where they were, and its heap must stay flat.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "the server's base URL")
	mode := flag.String("mode", "throughput", "throughput or reliability")
	clients := flag.String("clients", "1,4,8,16", "throughput: numbers of concurrent clients")
	requests := flag.Int("requests", 4, "throughput: requests per client at each level")
	maxTokens := flag.Int("max-tokens", 64, "completion tokens per request")
	total := flag.Int("total", 500, "reliability: requests")
	concurrency := flag.Int("concurrency", 16, "reliability: requests at a time")
	ctxLen := flag.Int("ctx", 1024, "reliability: the model's context, for near-limit prompts")
	format := flag.String("o", "md", "throughput output: md or json")
	flag.Parse()
	c := &client{base: strings.TrimSuffix(*url, "/"), http: &http.Client{Timeout: 10 * time.Minute}}
	var err error
	switch *mode {
	case "throughput":
		err = throughput(c, *clients, *requests, *maxTokens, *format)
	case "reliability":
		err = reliability(c, *total, *concurrency, *maxTokens, *ctxLen)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

type client struct {
	base string
	http *http.Client
}

type completion struct {
	Object  string `json:"object"`
	Choices []struct {
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

// complete sends one non-streamed completion and checks its shape.
func (c *client) complete(ctx context.Context, body map[string]any) (completion, int, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", c.base+"/v1/completions", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return completion{}, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return completion{}, resp.StatusCode, err
	}
	var out completion
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error *struct{ Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == nil || e.Error.Message == "" {
			return out, resp.StatusCode, fmt.Errorf("status %d with a malformed error body: %.200s", resp.StatusCode, raw)
		}
		return out, resp.StatusCode, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, resp.StatusCode, fmt.Errorf("malformed JSON: %v: %.200s", err, raw)
	}
	switch {
	case len(out.Choices) != 1 || out.Choices[0].FinishReason == nil:
		return out, resp.StatusCode, fmt.Errorf("no choice or finish_reason: %.200s", raw)
	case out.Usage == nil || out.Usage.TotalTokens != out.Usage.PromptTokens+out.Usage.CompletionTokens:
		return out, resp.StatusCode, fmt.Errorf("usage missing or inconsistent: %.200s", raw)
	case *out.Choices[0].FinishReason != "stop" && *out.Choices[0].FinishReason != "length":
		return out, resp.StatusCode, fmt.Errorf("finish_reason %q", *out.Choices[0].FinishReason)
	}
	return out, resp.StatusCode, nil
}

// stream sends one streamed completion; with cancelAfter > 0 it hangs up
// after that many events. It checks that a whole stream ends with a
// finish_reason and [DONE].
func (c *client) stream(ctx context.Context, body map[string]any, cancelAfter int) (int, error) {
	body["stream"] = true
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", c.base+"/v1/completions", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	sc := bufio.NewScanner(resp.Body)
	events, finished, done := 0, false, false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		switch {
		case !ok:
			return 200, fmt.Errorf("not an SSE data line: %q", line)
		case done:
			return 200, errors.New("data after [DONE]")
		case data == "[DONE]":
			done = true
			continue
		}
		var ev completion
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return 200, fmt.Errorf("malformed event: %v: %.200s", err, data)
		}
		if len(ev.Choices) == 1 && ev.Choices[0].FinishReason != nil {
			finished = true
		}
		if events++; cancelAfter > 0 && events == cancelAfter {
			cancel()
			return 200, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 200, err
	}
	if !finished || !done {
		return 200, fmt.Errorf("the stream ended without a finish_reason (%v) or [DONE] (%v)", finished, done)
	}
	return 200, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

type level struct {
	Clients   int     `json:"clients"`
	Requests  int     `json:"requests"`
	Tokens    int     `json:"completion_tokens"`
	Seconds   float64 `json:"seconds"`
	TokPerSec float64 `json:"tok_per_s"`
	P50       float64 `json:"p50_s"`
	P99       float64 `json:"p99_s"`
}

func throughput(c *client, levels string, perClient, maxTokens int, format string) error {
	var out []level
	for _, f := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bad -clients entry %q", f)
		}
		// One warm-up request (page faults, first allocations).
		if _, _, err := c.complete(context.Background(), map[string]any{"prompt": "Once", "max_tokens": 4}); err != nil {
			return err
		}
		var mu sync.Mutex
		var lat []time.Duration
		var tokens int
		var failed error
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := range n {
			wg.Go(func() {
				for k := range perClient {
					start := time.Now()
					r, status, err := c.complete(context.Background(), map[string]any{
						"prompt": fmt.Sprintf("Once upon a time, client %d told story %d", i, k), "max_tokens": maxTokens,
						"temperature": 0.8, "seed": 1000*i + k + 1})
					mu.Lock()
					if err == nil && status != 200 {
						err = fmt.Errorf("status %d", status)
					}
					if err != nil && failed == nil {
						failed = err
					}
					if err == nil {
						lat = append(lat, time.Since(start))
						tokens += r.Usage.CompletionTokens
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		secs := time.Since(t0).Seconds()
		if failed != nil {
			return failed
		}
		slices.Sort(lat)
		out = append(out, level{Clients: n, Requests: len(lat), Tokens: tokens, Seconds: secs,
			TokPerSec: float64(tokens) / secs, P50: percentile(lat, 50).Seconds(), P99: percentile(lat, 99).Seconds()})
	}
	if format == "json" {
		return json.NewEncoder(os.Stdout).Encode(out)
	}
	fmt.Println("| clients | requests | tok/s | p50 (s) | p99 (s) |")
	fmt.Println("| ---: | ---: | ---: | ---: | ---: |")
	for _, l := range out {
		fmt.Printf("| %d | %d | %.0f | %.2f | %.2f |\n", l.Clients, l.Requests, l.TokPerSec, l.P50, l.P99)
	}
	return nil
}

// serverMetric reads one unlabelled sample from /metrics (0, false if absent).
func (c *client) serverMetric(name string) (float64, bool) {
	resp, err := c.http.Get(c.base + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

func reliability(c *client, total, concurrency, maxTokens, ctxLen int) error {
	// Calibrate a prompt that lands near the end of the context.
	r, _, err := c.complete(context.Background(), map[string]any{"prompt": strings.Repeat("tree ", 100), "max_tokens": 1})
	if err != nil {
		return err
	}
	perWord := float64(r.Usage.PromptTokens-1) / 100
	nearLimit := strings.Repeat("tree ", int(float64(ctxLen-24)/perWord))
	// Idle keep-alive connections hold a goroutine each in the server: close
	// ours around each count.
	c.http.CloseIdleConnections()
	time.Sleep(100 * time.Millisecond)
	goroutines0, haveMetrics := c.serverMetric("go_goroutines")
	heap0, _ := c.serverMetric("go_memstats_heap_inuse_bytes")

	var ok, rejected, cancelled, near atomic.Int64
	var mu sync.Mutex
	var failures []string
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				body := map[string]any{"prompt": fmt.Sprintf("Story %d: once upon a time", i), "max_tokens": maxTokens,
					"temperature": 0.8, "seed": i + 1}
				if i%25 == 7 {
					body["prompt"] = nearLimit
					near.Add(1)
				}
				var status int
				var err error
				switch {
				case i%3 == 0 && i%30 == 0, i%3 == 0 && i%30 == 3, i%3 == 0 && i%30 == 6:
					// A tenth of all requests: streamed, then the client hangs up.
					status, err = c.stream(context.Background(), body, 3)
					cancelled.Add(1)
				case i%3 == 0:
					status, err = c.stream(context.Background(), body, 0)
				default:
					_, status, err = c.complete(context.Background(), body)
				}
				switch {
				case err != nil:
					mu.Lock()
					failures = append(failures, fmt.Sprintf("request %d: %v", i, err))
					mu.Unlock()
				case status == 429 || status == 503:
					rejected.Add(1)
				case status != 200:
					mu.Lock()
					failures = append(failures, fmt.Sprintf("request %d: status %d", i, status))
					mu.Unlock()
				default:
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("reliability: %d requests (%d at a time; %d streamed and hung up on, %d near the context limit) in %.1f s: %d ok, %d rejected (429/503), %d failed\n",
		total, concurrency, cancelled.Load(), near.Load(), time.Since(t0).Seconds(), ok.Load(), rejected.Load(), len(failures))
	for _, f := range failures[:min(len(failures), 10)] {
		fmt.Println("  ", f)
	}
	if len(failures) > 0 || ok.Load()+rejected.Load() != int64(total) {
		return fmt.Errorf("%d failures; %d of %d requests answered", len(failures), ok.Load()+rejected.Load(), total)
	}
	if !haveMetrics {
		fmt.Println("reliability: no go_goroutines in /metrics; goroutine and memory checks skipped")
		return nil
	}
	var g float64
	for range 50 { // hung-up streams end at the server's next step
		c.http.CloseIdleConnections()
		if g, _ = c.serverMetric("go_goroutines"); g <= goroutines0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	heap1, _ := c.serverMetric("go_memstats_heap_inuse_bytes")
	fmt.Printf("reliability: server goroutines %.0f before, %.0f after; heap in use %.1f MB before, %.1f MB after\n",
		goroutines0, g, heap0/1e6, heap1/1e6)
	if g > goroutines0 {
		return fmt.Errorf("goroutines left: %.0f before, %.0f after", goroutines0, g)
	}
	if heap1 > 2*heap0+16e6 {
		return fmt.Errorf("heap grew from %.1f MB to %.1f MB", heap0/1e6, heap1/1e6)
	}
	return nil
}
