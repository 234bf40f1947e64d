package main

import (
	"encoding/json"
	"strings"
	"testing"

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
		require.Equal(t, "mmap", r.Memory)
		require.Len(t, r.SamplesTPS, 2)
		require.Positive(t, r.AvgTPS)
		require.Positive(t, r.Params)
	}
	require.Equal(t, []string{"pp8", "pp16", "tg12", "pp8", "pp16", "tg12"}, tests)
	require.Equal(t, 1, rows[0].Threads)
	require.Equal(t, 2, rows[5].Threads)
}

func TestBenchTableWithBandwidth(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "bench", fixture(t, "stories260K-q80.bin"), "-p", "0", "-n", "4", "-r", "1", "-threads", "1",
		"-bandwidth-mib", "16", "-mmap=false")
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 3)
	require.Contains(t, lines[0], "| model | size | params | format | weights in | threads | test | t/s | memory bandwidth used |")
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
}
