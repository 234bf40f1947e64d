package model

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// aligned copies b into a 4-byte aligned buffer, as a mapping would be.
func aligned(b []byte) []byte {
	buf := make([]float32, (len(b)+3)/4)
	out := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), len(b))
	copy(out, b)
	return out
}

// header returns a legacy header with the given seven fields.
func legacyHeader(dims ...int32) []byte {
	var b []byte
	for _, d := range dims {
		b = binary.LittleEndian.AppendUint32(b, uint32(d))
	}
	return b
}

func TestParseCheckpointErrors(t *testing.T) {
	valid := checkpointBytes(tinyConfig, 1)
	v1 := tinyConfig
	v1.Version = 1
	validV1 := checkpointBytes(v1, 1)
	withVersion := func(v uint32) []byte {
		b := append([]byte(nil), validV1...)
		binary.LittleEndian.PutUint32(b[4:], v)
		return b
	}
	kb := make([]byte, 1024)
	copy(kb, legacyHeader(64, 172, 1_000_000_000, 8, 4, 512, 512))
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "shorter than any checkpoint header"},
		{"short legacy header", valid[:20], "shorter than the 28-byte header"},
		{"short v1 header", validV1[:100], "shorter than the 256-byte header"},
		{"zero dim", legacyHeader(0, 8, 1, 1, 1, 4, 4), "dim is 0"},
		{"negative layers", legacyHeader(8, 8, -1, 1, 1, 4, 4), "n_layers is -1"},
		{"zero kv heads", legacyHeader(8, 8, 1, 2, 0, 4, 4), "n_kv_heads is 0"},
		{"zero seq_len", legacyHeader(8, 8, 1, 2, 2, 4, 0), "seq_len is 0"},
		{"min int vocab", legacyHeader(8, 8, 1, 2, 2, -1<<31, 4), "vocab_size"},
		{"dim not divisible by heads", legacyHeader(10, 8, 1, 3, 3, 4, 4), "not divisible by n_heads"},
		{"heads not divisible by kv heads", legacyHeader(12, 8, 1, 6, 4, 4, 4), "not divisible by n_kv_heads"},
		{"odd head size", legacyHeader(12, 8, 1, 4, 4, 4, 4), "head size 3"},
		{"truncated weights", valid[:len(valid)-4], "truncated"},
		{"truncated v1 weights", validV1[:len(validV1)-1], "truncated"},
		{"a billion layers in 1 KB", kb, "truncated"},
		{"huge dims overflow", legacyHeader(1<<30, 1<<30, 1<<30, 2, 2, 1<<30, 1<<30), "does not fit in 64 bits"},
		{"huge v1 seq_len", func() []byte {
			b := append([]byte(nil), validV1...)
			binary.LittleEndian.PutUint32(b[8+24:], 1<<30)
			return b
		}(), "KV cache"},
		{"unknown version", withVersion(7), "unknown checkpoint version 7"},
		{"version 2 without a group size", withVersion(2), "group_size is 0, must be positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parseCheckpoint(aligned(c.data), "bad.bin")
			require.Error(t, err)
			require.Contains(t, err.Error(), "checkpoint bad.bin: ")
			require.Contains(t, err.Error(), c.want)
		})
	}
}

func TestParseCheckpointAcceptsValid(t *testing.T) {
	for _, shared := range []bool{false, true} {
		for _, version := range []int{0, 1} {
			c := tinyConfig
			c.SharedClassifier, c.Version = shared, version
			data := checkpointBytes(c, 1)
			got, w, err := parseCheckpoint(aligned(data), "ok.bin")
			require.NoError(t, err)
			require.Equal(t, c, got)
			require.Len(t, w.layers, c.Layers)
			require.Len(t, w.classifier.f, c.VocabSize*c.Dim)
			require.Len(t, w.layers[1].w2.f, c.Dim*c.HiddenDim)
			// Trailing bytes after the weights are ignored, as run.c does.
			_, _, err = parseCheckpoint(aligned(append(data, 1, 2, 3, 4)), "ok.bin")
			require.NoError(t, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing.bin"))
	require.ErrorContains(t, err, "missing.bin")
	require.ErrorContains(t, err, "no such file")

	path := filepath.Join(t.TempDir(), "empty.bin")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	_, err = Open(path)
	require.ErrorContains(t, err, "empty.bin")

	dir := t.TempDir()
	_, err = Open(dir)
	require.Error(t, err)
}

// TestOpenSharesTheMapping checks that weights are views into the file's
// mapping rather than copies.
func TestOpenSharesTheMapping(t *testing.T) {
	m := openModel(t, writeCheckpoint(t, tinyConfig, 2))
	emb := m.w.tokenEmbedding.f
	q := m.w.layers[0].wq.f
	// In a v0 file the first layer's wq follows the embedding table and
	// rms_att in the same buffer.
	gap := uintptr(unsafe.Pointer(&q[0])) - uintptr(unsafe.Pointer(&emb[0]))
	want := uintptr(4 * (m.Config.VocabSize*m.Config.Dim + m.Config.Layers*m.Config.Dim))
	require.Equal(t, want, gap)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "Close is idempotent")
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add(checkpointBytes(tinyConfig, 1))
	v1 := tinyConfig
	v1.Version, v1.SharedClassifier = 1, true
	f.Add(checkpointBytes(v1, 1))
	f.Add(legacyHeader(8, 8, 1, 2, 2, 4, 4))
	f.Add(legacyHeader(64, 172, 1_000_000_000, 8, 4, 512, 512))
	// Counts at the limits, in a version 1 header over real weights:
	// seq_len (bounded by the KV cache, not the file) and n_layers.
	for _, field := range []int{2, 6} {
		b := checkpointBytes(v1, 1)
		putInt32(b[8+4*field:], 1<<31-1)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, w, err := parseCheckpoint(aligned(data), "fuzz.bin")
		if err != nil {
			return
		}
		// A valid header's tensors lie inside the data.
		need, err := c.fileSize(map[bool]int{true: versionedHeaderSize, false: legacyHeaderSize}[c.Version > 0])
		if err != nil || need > int64(len(data)) {
			t.Fatalf("accepted %d bytes needing %d (%v)", len(data), need, err)
		}
		if len(w.layers) != c.Layers || w.classifier.rows != c.VocabSize || w.classifier.cols != c.Dim {
			t.Fatalf("bad layout for %s", c.describe())
		}
	})
}
