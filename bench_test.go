package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/llama2-go/llama2/internal/kernels"
	"github.com/llama2-go/llama2/model"

	"github.com/stretchr/testify/require"
)

func TestBenchJSON(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "bench", fixture(t, "stories260K.bin"), "-p", "8,16", "-n", "12",
		"-r", "2", "-threads", "1,2", "-bandwidth=false", "-o", "json", "-mmap")
	require.Equal(t, 0, code, stderr)
	var rows []benchResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &rows))
	require.Len(t, rows, 6) // 2 thread counts × (pp8, pp16, tg12)
	var tests []string
	for _, r := range rows {
		tests = append(tests, r.Test)
		require.Equal(t, "stories260K.bin", r.Model)
		require.Equal(t, "fp32 (v0)", r.Format)
		require.Equal(t, "llama", r.Arch)
		require.Equal(t, "mmap", r.Memory)
		require.Len(t, r.SamplesTPS, 2)
		require.Positive(t, r.AvgTPS)
		require.Positive(t, r.Params)
	}
	require.Equal(t, []string{"pp8", "pp16", "tg12", "pp8", "pp16", "tg12"}, tests)
	require.Equal(t, 1, rows[0].Threads)
	require.Equal(t, 2, rows[5].Threads)
}

// TestBenchDepth: -d runs each test after that many positions in the
// cache (its rows say so), with the cache types of -ctk and -ctv.
func TestBenchDepth(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "bench", fixture(t, "gguf/randk-f32.gguf"), "-p", "8", "-n", "4",
		"-d", "0,100", "-r", "1", "-threads", "2", "-bandwidth=false", "-o", "json", "-ctk", "f16", "-ctv", "q8_0")
	require.Equal(t, 0, code, stderr)
	var rows []benchResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &rows))
	var tests []string
	for _, r := range rows {
		tests = append(tests, r.Test)
		require.Equal(t, kernels.DetectCPU().String(), r.CPU)
		require.Equal(t, "f16", r.CacheK)
		require.Equal(t, "q8_0", r.CacheV)
		require.Positive(t, r.AvgTPS)
	}
	require.Equal(t, []string{"pp8 (KV f16/q8_0)", "tg4 (KV f16/q8_0)", "pp8 @ d100 (KV f16/q8_0)", "tg4 @ d100 (KV f16/q8_0)"}, tests)
	require.Equal(t, []int{0, 0, 100, 100}, []int{rows[0].Depth, rows[1].Depth, rows[2].Depth, rows[3].Depth})
	require.Contains(t, stderr, "filling the cache to depth 100")
}

func TestBenchTableWithBandwidth(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "bench", fixture(t, "stories260K-q80.bin"), "-p", "0", "-n", "4", "-r", "1", "-threads", "1",
		"-bandwidth-mib", "16", "-mmap=false")
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 5)
	require.Equal(t, "cpu: "+kernels.DetectCPU().String(), lines[0])
	require.Empty(t, lines[1])
	lines = lines[2:]
	require.Contains(t, lines[0], "| model | arch | size | params | format | weights in | threads | test | t/s | memory bandwidth used |")
	require.Regexp(t, `\| Q8_0 g64 \(v2\) \| anonymous( \(huge pages\))? \| 1 \| tg4 \|`, lines[2])
	require.Regexp(t, `[0-9.]+% of [0-9.]+ GB/s \|$`, lines[2])
}

func TestBenchErrors(t *testing.T) {
	model := fixture(t, "stories260K.bin")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "no checkpoint given"},
		{[]string{"bench", model, "-p", "x"}, `-p "x": want comma-separated integers`},
		{[]string{"bench", model, "-threads", "0"}, "-threads"},
		{[]string{"bench", model, "-r", "0"}, "-r 0 must be at least 1"},
		{[]string{"bench", model, "-bandwidth-mib", "0"}, "-bandwidth-mib 0"},
		{[]string{"bench", model, "-o", "xml"}, `-o "xml"`},
		{[]string{"bench", model, "-n", "100000"}, "beyond the model's context of 512"},
		{[]string{"bench", model, "-p", "0", "-n", "100", "-d", "500"}, "test size 100 after a depth of 500 is beyond the model's context of 512"},
		{[]string{"bench", model, "-d", "-1"}, `-d "-1": want comma-separated integers >= 0`},
		{[]string{"bench", model, "-ctk", "q4"}, `cache type "q4": want f32, f16 or q8_0`},
		{[]string{"bench", model, "-ctv", "q8_0"}, "cache type q8_0 needs a head size that is a multiple of 32, not 8"},
		{[]string{"bench", model, "extra"}, `unexpected argument "extra"`},
		{[]string{"bench", "missing.bin"}, "missing.bin"},
	} {
		code, _, stderr := runCLI(t, "", c.args...)
		require.Equal(t, 1, code, c.args)
		require.Contains(t, stderr, c.want, c.args)
	}
	code, stdout, _ := runCLI(t, "", "bench", "-h")
	require.Equal(t, 0, code)
	require.Contains(t, stdout, "Usage: llama2 bench")
	require.Contains(t, stdout, "GGUF files of the architectures llama, qwen2\nwith tensors of the types F32, F16, BF16, IQ4_NL, Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K, Q8_0.")
}

func TestOpenOptions(t *testing.T) {
	var out strings.Builder
	o := openOptions(model.MmapAuto, true, false, &out)
	require.Equal(t, model.MmapAuto, o.Mmap)
	require.True(t, o.Mlock)
	require.Nil(t, o.Progress, "no progress display when stderr is not a terminal")
	require.Equal(t, model.MmapOn, openOptions(model.MmapAuto, false, true, &out).Mmap,
		"-q8 maps: the fp32 weights are dropped after quantizing")
	require.Equal(t, model.MmapOff, openOptions(model.MmapOff, false, true, &out).Mmap, "an explicit -mmap=false wins")
}

func TestLoadProgress(t *testing.T) {
	var out strings.Builder
	p := loadProgress(&out)
	const total = 1 << 30
	for done := int64(0); done <= total; done += total / 8 {
		p(done, total)
	}
	p(total, total) // a repeated value draws nothing
	require.Equal(t, "\rloading weights:   0%\rloading weights:  12%\rloading weights:  25%\rloading weights:  37%"+
		"\rloading weights:  50%\rloading weights:  62%\rloading weights:  75%\rloading weights:  87%\rloading weights: 100%\n",
		out.String())
	out.Reset()
	p = loadProgress(&out)
	p(1<<20, 1<<20)
	require.Empty(t, out.String(), "small files load too fast to show progress")
}
