package model

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// allocatedBy returns the bytes f allocates (runtime.MemStats.TotalAlloc:
// what was reserved, touched or not).
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// maxParseAlloc bounds what reading one of these small files may allocate:
// the file's own size many times over, and nothing in proportion to a
// count in it. (llama.block_count 16777216 used to reserve 20.5 GB.)
const maxParseAlloc = 4 << 20

// TestGGUFCountsBoundedBeforeAllocation sets each count a GGUF model
// reads to the largest value the metadata accepts (maxDimension) in a
// file that holds one small layer: the file is refused, or opened,
// without allocating in proportion to the count.
func TestGGUFCountsBoundedBeforeAllocation(t *testing.T) {
	huge := uint32(maxDimension)
	cases := []struct {
		key  string
		want string // "" when the file is valid with that count
	}{
		{"llama.block_count", "llama.block_count is 16777216, but the file has 11 tensors, enough for at most 1 layers of 9"},
		{"llama.context_length", ""},
		{"llama.embedding_length", "llama.rope.dimension_count is 4, but the head size is 8388608"},
		{"llama.feed_forward_length", "tensor blk.0.ffn_gate.weight has shape [8 16], want [8 16777216]"},
		{"llama.attention.head_count", "is not divisible by llama.attention.head_count 16777216"},
		{"llama.attention.head_count_kv", "not divisible by attention.head_count_kv 16777216"},
		{"llama.rope.dimension_count", "llama.rope.dimension_count is 16777216"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			g := newTinyGGUF()
			g.kv[c.key] = huge
			data := aligned(g.bytes(t))
			var err error
			n := allocatedBy(func() { _, _, _, err = parseGGUF(data, "counts.gguf") })
			require.Less(t, n, uint64(maxParseAlloc), "allocated %d bytes", n)
			if c.want == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, c.want)
			}
		})
	}
	// The vocabulary is token_embd's row count, and a tensor's shape is
	// checked against the file's bytes by package gguf before any model
	// sees it (package gguf's malformed-file tests, "lies past the end").
}

// TestCheckpointCountsBoundedBeforeAllocation does the same for each
// field of a llama2.c header, in a legacy and a version 1 file of tiny
// weights: every count is checked against the bytes that follow (or, for
// seq_len in version 1, against the KV cache a session would need).
func TestCheckpointCountsBoundedBeforeAllocation(t *testing.T) {
	const huge = 1<<31 - 1
	fields := []string{"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"}
	for _, version := range []int{0, 1} {
		c := tinyConfig
		c.Version = version
		valid := checkpointBytes(c, 1)
		off := 0
		if version > 0 {
			off = 8
		}
		for i, field := range fields {
			t.Run(fmt.Sprintf("v%d/%s", version, field), func(t *testing.T) {
				data := aligned(valid)
				putInt32(data[off+4*i:], huge)
				var err error
				n := allocatedBy(func() { _, _, err = parseCheckpoint(data, "counts.bin") })
				require.Error(t, err)
				require.Less(t, n, uint64(maxParseAlloc), "allocated %d bytes", n)
			})
		}
	}
}

func putInt32(b []byte, v int32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
