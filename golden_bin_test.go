package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGoldenBinary runs llama2.c's recorded cases through a built llama2
// binary, LLAMA2_GOLDEN_BIN, as separate processes: at 1 and 2 threads,
// LLAMA2_GOLDEN_REPS times each (default 3), each run killed after
// LLAMA2_GOLDEN_TIMEOUT (default 2m) so that a hang fails instead of
// blocking. It is skipped when LLAMA2_GOLDEN_BIN is unset. `make test-arm64`
// runs it in the arm64 test binary under qemu-aarch64 against the arm64
// build (the test execs the binary through the emulator; see runSelf), which
// repeats the runs that once hung in the worker pool.
func TestGoldenBinary(t *testing.T) {
	bin := os.Getenv("LLAMA2_GOLDEN_BIN")
	if bin == "" {
		t.Skip("LLAMA2_GOLDEN_BIN is not set")
	}
	// The binary's architecture, which may not be this process's: CI runs
	// this test natively with an arm64 binary (executed through qemu),
	// since forking under qemu-user can hang (Go's vfork-style clone).
	binArch := cmp.Or(os.Getenv("LLAMA2_GOLDEN_GOARCH"), runtime.GOARCH)
	reps := 3
	if s := os.Getenv("LLAMA2_GOLDEN_REPS"); s != "" {
		var err error
		reps, err = strconv.Atoi(s)
		require.NoError(t, err)
	}
	timeout := 2 * time.Minute
	if s := os.Getenv("LLAMA2_GOLDEN_TIMEOUT"); s != "" {
		var err error
		timeout, err = time.ParseDuration(s)
		require.NoError(t, err)
	}
	// llama2.c's cases, and the GGUF twins' (whose vocabulary is in the
	// file: no -z).
	var cases []goldenCase
	dirs := map[string]string{}
	for _, file := range []string{"golden/cases.json", "golden/gguf/cases-gguf.json"} {
		data, err := os.ReadFile(fixture(t, file))
		require.NoError(t, err)
		var more []goldenCase
		require.NoError(t, json.Unmarshal(data, &more))
		require.NotEmpty(t, more)
		for _, c := range more {
			dirs[c.Name] = filepath.Dir(file)
		}
		cases = append(cases, more...)
	}
	for _, c := range cases {
		checkpoint, tokenizer := fixture(t, strings.TrimPrefix(c.Checkpoint, "models/")), ""
		base := []string{checkpoint}
		if c.Tokenizer != "" {
			tokenizer = fixture(t, strings.TrimPrefix(c.Tokenizer, "models/"))
			base = append(base, "-z", tokenizer)
		}
		golden, err := os.ReadFile(fixture(t, filepath.Join(dirs[c.Name], c.Stdout)))
		require.NoError(t, err)
		for _, threads := range []string{"1", "2"} {
			t.Run(c.Name+"/threads="+threads, func(t *testing.T) {
				args := append(append(base[:len(base):len(base)], c.Args...), "-threads", threads)
				var first string
				for rep := range reps {
					stdout := runBinary(t, timeout, bin, c.Stdin, args...)
					if rep == 0 {
						first = stdout
						got, want := stdout, string(golden)
						if got != want && c.ComparePrefix > 0 && binArch != "amd64" {
							requireNearTieDivergence(t, checkpoint, tokenizer, c.Args, want, got) // as in TestGoldenCases
							continue
						}
						require.Equal(t, want, got)
					} else {
						require.Equal(t, first, stdout, "run %d differs from run 0", rep)
					}
				}
			})
		}
	}
}

// runBinary runs bin with args and stdin, killed after timeout, and returns
// its standard output; it fails the test on a non-zero exit or a timeout. A
// binary this process cannot exec (another architecture, run by qemu-user
// without binfmt_misc) goes through the emulator, as in runSelf.
func runBinary(t *testing.T, timeout time.Duration, bin, stdin string, args ...string) string {
	t.Helper()
	run := func(name string, args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ctx.Err() != nil {
			err = fmt.Errorf("killed after %v (a hang?): %w", timeout, err)
		}
		return stdout.String(), stderr.String(), err
	}
	stdout, stderr, err := run(bin, args...)
	if errors.Is(err, syscall.ENOEXEC) {
		emu, lookErr := exec.LookPath("qemu-" + qemuArch(cmp.Or(os.Getenv("LLAMA2_GOLDEN_GOARCH"), runtime.GOARCH)))
		require.NoError(t, lookErr, "cannot exec %s: %v", bin, err)
		stdout, stderr, err = run(emu, append([]string{bin}, args...)...)
	}
	require.NoError(t, err, "%s %s\n%s", bin, strings.Join(args, " "), stderr)
	return stdout
}

// qemuArch is qemu-user's name of a Go architecture (runtime.GOARCH by
// default).
func qemuArch(goarch ...string) string {
	arch := runtime.GOARCH
	if len(goarch) > 0 {
		arch = goarch[0]
	}
	if arch == "arm64" {
		return "aarch64"
	}
	return arch
}
