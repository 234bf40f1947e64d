package model

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// tinyConfig is a small shape with grouped-query attention, a separate
// classifier and sizes that are not multiples of any vector width.
var tinyConfig = Config{Dim: 48, HiddenDim: 100, Layers: 2, Heads: 6, KVHeads: 2, VocabSize: 37, SeqLen: 24}

// checkpointBytes encodes a checkpoint of shape c (in c.Version's format)
// whose tensors hold seeded random values. Each tensor's values depend only
// on its name and the seed, so a v0 and a v1 file of the same shape hold the
// same weights.
func checkpointBytes(c Config, seed uint64) []byte {
	le := binary.LittleEndian
	var out []byte
	dims := []int32{int32(c.Dim), int32(c.HiddenDim), int32(c.Layers), int32(c.Heads), int32(c.KVHeads), int32(c.VocabSize), int32(c.SeqLen)}
	if c.Version == 0 {
		if !c.SharedClassifier {
			dims[5] = -dims[5]
		}
		for _, d := range dims {
			out = le.AppendUint32(out, uint32(d))
		}
	} else {
		out = le.AppendUint32(out, versionMagic)
		out = le.AppendUint32(out, uint32(c.Version))
		for _, d := range dims {
			out = le.AppendUint32(out, uint32(d))
		}
		shared := byte(0)
		if c.SharedClassifier {
			shared = 1
		}
		out = append(out, shared)
		out = append(out, make([]byte, versionedHeaderSize-len(out))...)
	}
	for _, t := range c.tensorSpecs() {
		n := t.count * t.rows * t.cols
		h := fnv.New64a()
		h.Write([]byte(t.name))
		r := rand.New(rand.NewPCG(seed, h.Sum64()))
		norm := t.name == "rms_att" || t.name == "rms_ffn" || t.name == "rms_final"
		scale := 1 / math.Sqrt(float64(c.Dim))
		if t.name == "token_embedding" {
			scale = 1
		}
		for range n {
			v := (r.Float64()*2 - 1) * scale
			if norm {
				v = 1 + v/scale*0.1
			}
			out = le.AppendUint32(out, math.Float32bits(float32(v)))
		}
	}
	return out
}

// writeCheckpoint writes checkpointBytes to a temporary file.
func writeCheckpoint(tb testing.TB, c Config, seed uint64) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "model.bin")
	if err := os.WriteFile(path, checkpointBytes(c, seed), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// openModel opens a checkpoint and closes it when the test ends.
func openModel(tb testing.TB, path string) *Model {
	tb.Helper()
	m, err := Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// newSession creates a session and closes it when the test ends.
func newSession(tb testing.TB, m *Model, threads int) *Session {
	tb.Helper()
	s, err := m.NewSession(SessionOptions{Threads: threads})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}
