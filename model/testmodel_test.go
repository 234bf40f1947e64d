package model

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyConfig is a small shape with grouped-query attention, a separate
// classifier and sizes that are not multiples of any vector width.
var tinyConfig = Config{Dim: 48, HiddenDim: 100, Layers: 2, Heads: 6, KVHeads: 2, VocabSize: 37, SeqLen: 24}

// checkpointBytes encodes a checkpoint of shape c (in c.Version's format,
// 0 or 1) whose tensors hold seeded random values. Each tensor's values
// depend only on its name and the seed, so a v0 and a v1 file of the same
// shape hold the same weights. The layout is exportOrder's, written from
// llama2.c's export.py rather than taken from the reader's table.
func checkpointBytes(c Config, seed uint64) []byte {
	le := binary.LittleEndian
	var out []byte
	dims := []int32{int32(c.Dim), int32(c.HiddenDim), int32(c.Layers), int32(c.Heads), int32(c.KVHeads), int32(c.VocabSize), int32(c.SeqLen)}
	switch c.Version {
	case 0:
		if !c.SharedClassifier {
			dims[5] = -dims[5]
		}
		for _, d := range dims {
			out = le.AppendUint32(out, uint32(d))
		}
	case 1:
		out = le.AppendUint32(out, 0x616b3432) // "ak42"
		out = le.AppendUint32(out, 1)
		for _, d := range dims {
			out = le.AppendUint32(out, uint32(d))
		}
		shared := byte(0)
		if c.SharedClassifier {
			shared = 1
		}
		out = append(out, shared)
		out = append(out, make([]byte, 256-len(out))...)
	default:
		panic("checkpointBytes writes versions 0 and 1")
	}
	for _, t := range exportOrder(c) {
		h := fnv.New64a()
		h.Write([]byte(t.name))
		r := rand.New(rand.NewPCG(seed, h.Sum64()))
		norm := strings.HasPrefix(t.name, "rms_")
		scale := 1 / math.Sqrt(float64(c.Dim))
		if t.name == "token_embedding" {
			scale = 1
		}
		for range t.n {
			v := (r.Float64()*2 - 1) * scale
			if norm {
				v = 1 + v/scale*0.1
			}
			out = le.AppendUint32(out, math.Float32bits(float32(v)))
		}
	}
	return out
}

// exportOrder lists the float32 tensors of a version 0 or 1 file in the
// order llama2.c's export.py writes them (legacy_export, version1_export),
// each name with its number of values: a per-layer tensor is every
// layer's, one after another.
func exportOrder(c Config) []struct {
	name string
	n    int
} {
	d, h, l, v := c.Dim, c.HiddenDim, c.Layers, c.VocabSize
	kv, half := c.KVDim(), c.HeadSize()/2
	type t = struct {
		name string
		n    int
	}
	var order []t
	if c.Version == 0 {
		order = []t{
			{"token_embedding", v * d}, {"rms_att", l * d}, {"wq", l * d * d}, {"wk", l * kv * d},
			{"wv", l * kv * d}, {"wo", l * d * d}, {"rms_ffn", l * d}, {"w1", l * h * d},
			{"w2", l * d * h}, {"w3", l * h * d}, {"rms_final", d},
			{"freqs_cos", c.SeqLen * half}, {"freqs_sin", c.SeqLen * half},
		}
	} else {
		order = []t{
			{"rms_att", l * d}, {"rms_ffn", l * d}, {"rms_final", d}, {"token_embedding", v * d},
			{"wq", l * d * d}, {"wk", l * kv * d}, {"wv", l * kv * d}, {"wo", l * d * d},
			{"w1", l * h * d}, {"w2", l * d * h}, {"w3", l * h * d},
		}
	}
	if !c.SharedClassifier {
		order = append(order, t{"classifier", v * d})
	}
	return order
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
