package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

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
