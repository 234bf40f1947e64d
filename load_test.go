package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGoldenCasesInBothMemories runs llama2.c's recorded cases (as
// TestGoldenCases does) with the weights mapped (-mmap=true) and read into
// memory (-mmap=false): the output must not depend on where weights live.
func TestGoldenCasesInBothMemories(t *testing.T) {
	data, err := os.ReadFile(fixture(t, "golden/cases.json"))
	require.NoError(t, err)
	var cases []goldenCase
	require.NoError(t, json.Unmarshal(data, &cases))
	require.NotEmpty(t, cases)
	for _, c := range cases {
		checkpoint := fixture(t, strings.TrimPrefix(c.Checkpoint, "models/"))
		tokenizer := fixture(t, strings.TrimPrefix(c.Tokenizer, "models/"))
		want, err := os.ReadFile(fixture(t, filepath.Join("golden", c.Stdout)))
		require.NoError(t, err)
		for _, mmap := range []string{"-mmap=true", "-mmap=false"} {
			t.Run(c.Name+"/"+mmap, func(t *testing.T) {
				args := append([]string{checkpoint, "-z", tokenizer}, c.Args...)
				args = append(args, "-threads", "2", mmap)
				code, stdout, stderr := runCLI(t, c.Stdin, args...)
				require.Equal(t, 0, code, stderr)
				got, want := stdout, string(want)
				if c.ComparePrefix > 0 {
					got, want = got[:min(len(got), c.ComparePrefix)], want[:min(len(want), c.ComparePrefix)]
				}
				require.Equal(t, want, got)
			})
		}
	}
}

func TestMmapFlagErrors(t *testing.T) {
	model := fixture(t, "stories260K.bin")
	for _, args := range [][]string{
		{model, "-mmap=maybe"},
		{"bench", model, "-mmap=maybe"},
		{"serve", model, "-mmap=maybe"},
	} {
		code, _, stderr := runCLI(t, "", args...)
		require.Equal(t, 1, code, args)
		require.Contains(t, stderr, `"maybe": want true, false or auto`, args)
	}
}
