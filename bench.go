package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llama2-go/llama2/internal/kernels"
	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
)

const benchUsage = `Usage: llama2 bench <checkpoint> [options]
Measures prompt processing (ppN) and generation (tgN) speed, llama-bench style.
Options:
  -p <list>        prompt sizes, comma-separated, default 128 (0 = none)
  -n <list>        generated tokens, comma-separated, default 256 (0 = none)
  -r <int>         repetitions of each test after one warm-up run, default 5
  -threads <list>  thread counts, comma-separated, default all cores
  -batch <int>     prompt batch size, default 128
  -d <list>        depths: run each test after this many tokens already in the KV cache
                   (llama-bench's -d), comma-separated, default 0
  -ctk, -ctv <type>  element type of the cached keys, values: f32 (default), f16 or q8_0
  -bandwidth       measure memory bandwidth and report the fraction used by tg, default true
  -bandwidth-mib <int>  size of the buffer streamed to measure it, default 1024 (far beyond the caches)
  -o <md|json>     output format, default md
  -q8              quantize an fp32 checkpoint to Q8_0 (int8) when loading it
  -mmap=<bool>     map the weights (true) or read them into memory (false), default by size
  -mlock           lock the weights in RAM
` + hfUsage

// benchSupported says what bench (and every command) runs, for -h.
func benchSupported() string {
	return fmt.Sprintf("Runs llama2.c checkpoints (versions 0, 1, 2) and GGUF files of the architectures %s\nwith tensors of the types %s.\n",
		strings.Join(model.ArchitectureNames(), ", "), strings.Join(model.TensorTypeNames(), ", "))
}

type benchOptions struct {
	checkpoint string
	prompts    []int
	gens       []int
	depths     []int
	cacheK     model.KVType
	cacheV     model.KVType
	reps       int
	threads    []int
	batch      int
	bandwidth  bool
	bwMiB      int
	output     string
	q8         bool
	mmap       model.MmapMode
	mlock      bool
	hf         hfFlag
}

// benchResult is one row of the table.
type benchResult struct {
	Model     string `json:"model"`
	Arch      string `json:"arch"` // llama, qwen2, ... (model.Model.Architecture)
	SizeBytes int64  `json:"size_bytes"`
	Params    int64  `json:"params"`
	Format    string `json:"format"`
	// Where the weights are: "mmap", "anonymous (huge pages)", ...
	// (model.Model.WeightsMemory).
	Memory     string    `json:"weights_memory"`
	Threads    int       `json:"threads"`
	Test       string    `json:"test"`
	Tokens     int       `json:"tokens"`
	CPU        string    `json:"cpu_info"` // the processor and the kernels run on it
	Depth      int       `json:"n_depth"`  // tokens in the KV cache before the test
	CacheK     string    `json:"type_k"`   // the KV cache's element types
	CacheV     string    `json:"type_v"`
	AvgTPS     float64   `json:"avg_ts"`
	StddevTPS  float64   `json:"stddev_ts"`
	SamplesTPS []float64 `json:"samples_ts"`
	// For generation: weight bytes read per token × tok/s, over the
	// bandwidth measured with the same number of threads.
	BandwidthGBs     float64 `json:"bandwidth_gbs,omitempty"`
	BandwidthPercent float64 `json:"bandwidth_used_percent,omitempty"`
}

func runBench(args []string, stdout, stderr io.Writer) int {
	o, err := parseBenchArgs(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, benchUsage+benchSupported())
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "error: %v\n\n%s", err, benchUsage)
		return 1
	}
	if o.checkpoint, err = o.hf.checkpoint(context.Background(), o.checkpoint, stderr); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	results, err := bench(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
		return 0
	}
	fmt.Fprintf(stdout, "cpu: %s\n\n", cpuInfo())
	printBenchTable(stdout, results)
	return 0
}

func parseBenchArgs(args []string) (benchOptions, error) {
	o := benchOptions{reps: 5, batch: model.DefaultBatch, bandwidth: true, bwMiB: 1024, output: "md"}
	fs := flag.NewFlagSet("llama2 bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	prompts := fs.String("p", "128", "")
	gens := fs.String("n", "256", "")
	depths := fs.String("d", "0", "")
	fs.Var(&o.cacheK, "ctk", "")
	fs.Var(&o.cacheV, "ctv", "")
	threads := fs.String("threads", strconv.Itoa(runtime.NumCPU()), "")
	fs.IntVar(&o.reps, "r", o.reps, "")
	fs.IntVar(&o.batch, "batch", o.batch, "")
	fs.BoolVar(&o.bandwidth, "bandwidth", o.bandwidth, "")
	fs.IntVar(&o.bwMiB, "bandwidth-mib", o.bwMiB, "")
	fs.StringVar(&o.output, "o", o.output, "")
	fs.BoolVar(&o.q8, "q8", false, "")
	fs.Var(&o.mmap, "mmap", "")
	fs.BoolVar(&o.mlock, "mlock", false, "")
	o.hf.register(fs)
	var err error
	if o.checkpoint, err = parseWithCheckpoint(fs, args); err != nil {
		return o, err
	}
	if o.prompts, err = parseList("-p", *prompts, 0); err != nil {
		return o, err
	}
	if o.gens, err = parseList("-n", *gens, 0); err != nil {
		return o, err
	}
	for _, f := range strings.Split(*depths, ",") {
		// Unlike a test size, a depth of 0 is one to run: the empty cache.
		d, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || d < 0 {
			return o, fmt.Errorf("-d %q: want comma-separated integers >= 0", *depths)
		}
		o.depths = append(o.depths, d)
	}
	if o.threads, err = parseList("-threads", *threads, 1); err != nil {
		return o, err
	}
	switch {
	case o.reps < 1:
		return o, fmt.Errorf("-r %d must be at least 1", o.reps)
	case o.batch < 1:
		return o, fmt.Errorf("-batch %d must be at least 1", o.batch)
	case o.bwMiB < 1:
		return o, fmt.Errorf("-bandwidth-mib %d must be at least 1", o.bwMiB)
	case o.output != "md" && o.output != "json":
		return o, fmt.Errorf("-o %q: want md or json", o.output)
	}
	return o, nil
}

// parseList reads comma-separated integers of at least least.
func parseList(name, s string, least int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < least {
			return nil, fmt.Errorf("%s %q: want comma-separated integers >= %d", name, s, least)
		}
		if v > 0 {
			out = append(out, v)
		}
	}
	return out, nil
}

func bench(o benchOptions, progress io.Writer) ([]benchResult, error) {
	m, err := openModel(o.checkpoint, o.q8, openOptions(o.mmap, o.mlock, o.q8, progress))
	if err != nil {
		return nil, err
	}
	defer m.Close()
	fi, err := os.Stat(o.checkpoint)
	if err != nil {
		return nil, err
	}
	c := m.Config
	for _, d := range o.depths {
		for _, n := range append(append([]int(nil), o.prompts...), o.gens...) {
			if d+n > c.SeqLen {
				return nil, fmt.Errorf("test size %d after a depth of %d is beyond the model's context of %d", n, d, c.SeqLen)
			}
		}
	}
	var bw *model.BandwidthProbe
	if o.bandwidth && len(o.gens) > 0 {
		fmt.Fprintf(progress, "bench: allocating %d MiB to measure memory bandwidth...\n", o.bwMiB)
		if bw, err = model.NewBandwidthProbe(int64(o.bwMiB) << 20); err != nil {
			return nil, err
		}
		defer bw.Close()
	}
	r := rand.New(rand.NewPCG(1, 2))
	greedy := sample.New(c.VocabSize, 0, 0, 1)
	var results []benchResult
	for _, threads := range o.threads {
		s, err := m.NewSession(model.SessionOptions{Threads: threads, Batch: o.batch, KeyCache: o.cacheK, ValueCache: o.cacheV})
		if err != nil {
			return nil, err
		}
		for _, depth := range o.depths {
			if depth > 0 {
				// The cache's first depth positions, filled once and
				// kept: every test feeds from position depth on.
				fmt.Fprintf(progress, "bench: %s, %d threads, filling the cache to depth %d...\n", filepath.Base(o.checkpoint), threads, depth)
				fill := make([]int, depth)
				for i := range fill {
					fill[i] = r.IntN(c.VocabSize)
				}
				if _, err := s.PrefillLogits(fill, 0); err != nil {
					s.Close()
					return nil, err
				}
			}
			results = append(results, benchDepth(o, m, fi.Size(), s, threads, depth, r, greedy, bw, progress)...)
		}
		s.Close()
	}
	return results, nil
}

// benchDepth runs the prompt and generation tests on s, whose cache holds
// depth positions.
func benchDepth(o benchOptions, m *model.Model, size int64, s *model.Session, threads, depth int, r *rand.Rand,
	greedy *sample.Sampler, bw *model.BandwidthProbe, progress io.Writer) []benchResult {
	c := m.Config
	suffix := ""
	if depth > 0 {
		suffix = fmt.Sprintf(" @ d%d", depth)
	}
	if o.cacheK != model.KVF32 || o.cacheV != model.KVF32 {
		suffix += fmt.Sprintf(" (KV %v/%v)", o.cacheK, o.cacheV)
	}
	// row times run o.reps times after a warm-up; after each timed
	// run, if not nil, it calls between (untimed).
	row := func(test string, tokens int, run func() time.Duration, between func()) benchResult {
		fmt.Fprintf(progress, "bench: %s, %d threads, %s...\n", filepath.Base(o.checkpoint), threads, test)
		run() // warm-up: page in the weights, settle the clocks
		res := benchResult{
			Model: filepath.Base(o.checkpoint), Arch: m.Architecture(), SizeBytes: size, Params: c.Params(),
			Format: m.Format(), Memory: m.WeightsMemory(), Threads: threads, Test: test, Tokens: tokens,
			CPU: cpuInfo(), Depth: depth, CacheK: o.cacheK.String(), CacheV: o.cacheV.String(),
		}
		for range o.reps {
			res.SamplesTPS = append(res.SamplesTPS, float64(tokens)/run().Seconds())
			if between != nil {
				between()
			}
		}
		res.AvgTPS, res.StddevTPS = meanStddev(res.SamplesTPS)
		return res
	}
	var results []benchResult
	for _, p := range o.prompts {
		prompt := make([]int, p)
		for i := range prompt {
			prompt[i] = r.IntN(c.VocabSize)
		}
		results = append(results, row(fmt.Sprintf("pp%d%s", p, suffix), p, func() time.Duration {
			start := time.Now()
			s.PrefillLogits(prompt, depth)
			return time.Since(start)
		}, nil))
	}
	for _, n := range o.gens {
		// The bandwidth is measured after every timed run, and the
		// fraction compares the means of both: on a shared machine the
		// rate moves within minutes (bwPasses).
		var bws []float64
		var probe func()
		if bw != nil {
			probe = func() { bws = append(bws, bw.Measure(threads, bwPasses)) }
		}
		res := row(fmt.Sprintf("tg%d%s", n, suffix), n, func() time.Duration {
			start := time.Now()
			token := tokenizer.BOS
			for pos := depth; pos < depth+n; pos++ {
				logits, _ := s.Forward(token, pos)
				token = greedy.Sample(logits)
			}
			return time.Since(start)
		}, probe)
		if mean, _ := meanStddev(bws); mean > 0 {
			// A token reads the weights, and the cache up to its
			// position: the mean over the test's positions.
			perToken := float64(m.StreamedBytesPerToken()) + float64(m.KVBytesRead(depth+n/2, o.cacheK, o.cacheV))
			res.BandwidthGBs = mean / 1e9
			res.BandwidthPercent = 100 * perToken * res.AvgTPS / mean
		}
		results = append(results, res)
	}
	return results
}

// cpuInfo names the processor for every row: figures from different CPUs
// are not comparable (docs/performance.md). Read once, when bench asks
// (not at every start of the command).
var cpuInfo = sync.OnceValue(func() string { return kernels.DetectCPU().String() })

// bwPasses is how many reads of the bandwidth buffer each measurement takes
// the best of. bench measures after every generation run, so that the
// fraction compares rates from the same minutes. On the 2-core Zen 5 VM,
// one measurement after all the runs (the best of 10) had moved the same
// file's fraction by up to 25 points between two rounds of a sitting
// (stories42M Q8_0, 1 thread: 97% and 72%), and past 100% (TinyLlama fp32,
// 2 threads: 107%).
const bwPasses = 5

// meanStddev returns the mean and the sample standard deviation of xs; 0, 0
// for none.
func meanStddev(xs []float64) (mean, sd float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

func printBenchTable(w io.Writer, results []benchResult) {
	fmt.Fprintln(w, "| model | arch | size | params | format | weights in | threads | test | t/s | memory bandwidth used |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |")
	for _, r := range results {
		bw := ""
		if r.BandwidthGBs > 0 {
			bw = fmt.Sprintf("%.1f%% of %.1f GB/s", r.BandwidthPercent, r.BandwidthGBs)
		}
		fmt.Fprintf(w, "| %s | %s | %.2f MiB | %.2f M | %s | %s | %d | %s | %.2f ± %.2f | %s |\n",
			r.Model, r.Arch, float64(r.SizeBytes)/(1<<20), float64(r.Params)/1e6, r.Format, r.Memory, r.Threads, r.Test,
			r.AvgTPS, r.StddevTPS, bw)
	}
}

// openOptions are the model.OpenOptions of the -mmap, -mlock and -q8 flags,
// with a progress line on stderr while a large file is read, if stderr is a
// terminal (so that logs and tests see nothing of it).
func openOptions(mmap model.MmapMode, mlock, q8 bool, stderr io.Writer) model.OpenOptions {
	if q8 && mmap == model.MmapAuto {
		// Quantizing copies the matrices to the heap and the fp32 ones are
		// never read again: mapped, the page cache can drop them; read into
		// memory, they would stay resident (4.4 GB for TinyLlama).
		mmap = model.MmapOn
	}
	opts := model.OpenOptions{Mmap: mmap, Mlock: mlock}
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			opts.Progress = loadProgress(stderr)
		}
	}
	return opts
}

// loadProgress returns a Progress that redraws "loading weights: N%" on w
// for files of 256 MiB or more: smaller ones load too fast to watch.
func loadProgress(w io.Writer) func(done, total int64) {
	last := -1
	return func(done, total int64) {
		if total < 256<<20 {
			return
		}
		if pct := int(100 * done / total); pct != last {
			last = pct
			fmt.Fprintf(w, "\rloading weights: %3d%%", pct)
			if done == total {
				fmt.Fprintln(w)
			}
		}
	}
}
