package server

// GET /metrics: Prometheus's text format, through the official client
// (github.com/prometheus/client_golang). Each Server has its own registry,
// so several servers in one process (tests, a program mounting two models)
// do not collide; it also carries the Go runtime's and the process's
// standard metrics (goroutines, heap, resident memory), which the load test
// reads to check that nothing leaks.

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/llama2-go/llama2/model"
)

type metrics struct {
	handler http.Handler

	requests         *prometheus.CounterVec
	promptTokens     prometheus.Counter
	cachedTokens     prometheus.Counter
	completionTokens prometheus.Counter
	queueDepth       prometheus.Gauge
	activeSlots      prometheus.Gauge
	batchSize        prometheus.Histogram
	stepSeconds      prometheus.Histogram
	ttftSeconds      prometheus.Histogram
	tokenSeconds     prometheus.Histogram
	queueSeconds     prometheus.Histogram
}

// latencyBuckets span 1 ms to about 65 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 2, 17)

func newMetrics(s *Server) *metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llama2_requests_total", Help: "HTTP requests answered, by path and status code.",
		}, []string{"path", "status"}),
		promptTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llama2_prompt_tokens_total", Help: "Prompt tokens of the generations run (cached ones included).",
		}),
		cachedTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llama2_prompt_cached_tokens_total", Help: "Prompt tokens reused from a slot's KV cache instead of prefilled.",
		}),
		completionTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llama2_completion_tokens_total", Help: "Tokens generated.",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llama2_queue_depth", Help: "Requests waiting for a slot.",
		}),
		activeSlots: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llama2_active_slots", Help: "Slots running a request (prefilling or decoding).",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "llama2_batch_size", Help: "Sequences advanced by each decode step.",
			Buckets: prometheus.LinearBuckets(1, 1, max(s.opts.Parallel, 1)),
		}),
		stepSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "llama2_decode_step_seconds", Help: "Duration of a decode step (one forward pass for the whole batch).",
			Buckets: latencyBuckets,
		}),
		ttftSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "llama2_time_to_first_token_seconds", Help: "From a request's arrival to its first token (queueing and prefill included).",
			Buckets: latencyBuckets,
		}),
		tokenSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "llama2_time_per_output_token_seconds", Help: "Between two consecutive tokens of a request.",
			Buckets: latencyBuckets,
		}),
		queueSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "llama2_queue_wait_seconds", Help: "From a request's arrival to getting a slot.",
			Buckets: latencyBuckets,
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.promptTokens, m.cachedTokens, m.completionTokens,
		m.queueDepth, m.activeSlots, m.batchSize, m.stepSeconds, m.ttftSeconds, m.tokenSeconds, m.queueSeconds} {
		f(c)
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "llama2_slots", Help: "Slots (requests generating at once, decoded together).",
	}, func() float64 { return float64(s.opts.Parallel) }))
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// request counts an answered request. Paths outside the API count as
// "other", so that scanners cannot grow the label set.
func (m *metrics) request(path string, status int) {
	switch path {
	case "/v1/completions", "/v1/chat/completions", "/apply-template", "/v1/models", "/health", "/metrics":
	default:
		path = "other"
	}
	m.requests.WithLabelValues(path, strconv.Itoa(status)).Inc()
}

func (m *metrics) tokens(u model.Usage) {
	m.promptTokens.Add(float64(u.PromptTokens))
	m.cachedTokens.Add(float64(u.CachedTokens))
	m.completionTokens.Add(float64(u.CompletionTokens))
}

func (m *metrics) setQueue(waiting, running int) {
	m.queueDepth.Set(float64(waiting))
	m.activeSlots.Set(float64(running))
}

func (m *metrics) step(n int, d time.Duration) {
	m.batchSize.Observe(float64(n))
	m.stepSeconds.Observe(d.Seconds())
}

func (m *metrics) ttft(d time.Duration)       { m.ttftSeconds.Observe(d.Seconds()) }
func (m *metrics) interToken(d time.Duration) { m.tokenSeconds.Observe(d.Seconds()) }
func (m *metrics) queueWait(d time.Duration)  { m.queueSeconds.Observe(d.Seconds()) }
