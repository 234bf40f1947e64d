package model

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Shapes of the published TinyStories models (random weights: the values do
// not change the speed).
var storiesShapes = []struct {
	name string
	cfg  Config
}{
	{"stories15M", Config{Dim: 288, HiddenDim: 768, Layers: 6, Heads: 6, KVHeads: 6, VocabSize: 32000, SeqLen: 256, SharedClassifier: true}},
	{"stories42M", Config{Dim: 512, HiddenDim: 1376, Layers: 8, Heads: 8, KVHeads: 8, VocabSize: 32000, SeqLen: 1024, SharedClassifier: true}},
	{"stories110M", Config{Dim: 768, HiddenDim: 2048, Layers: 12, Heads: 12, KVHeads: 12, VocabSize: 32000, SeqLen: 1024, SharedClassifier: true}},
}

// benchCheckpoint writes (once per machine) a random checkpoint of shape c
// into the temporary directory and returns its path.
func benchCheckpoint(b *testing.B, name string, c Config) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("llama2-bench-%s-%s.bin", name, c.describe()))
	want, _ := c.fileSize(legacyHeaderSize)
	if fi, err := os.Stat(path); err == nil && fi.Size() == want {
		return path
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, checkpointBytes(c, 1), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkForward times one generated token (a forward pass at position
// 128) on each stories shape, fp32 and Q8_0 (quantized in memory, groups
// inside rows), with 1 and 2 threads. Reports tok/s; MB/s counts the weight
// bytes a token reads.
func BenchmarkForward(b *testing.B) {
	for _, shape := range storiesShapes {
		for _, format := range []string{"fp32", "q8"} {
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%s/threads=%d", shape.name, format, threads), func(b *testing.B) {
					m := openModel(b, benchCheckpoint(b, shape.name, shape.cfg))
					if format == "q8" {
						q, err := m.Quantize(RowAlignedGroupSize(m.Config))
						if err != nil {
							b.Fatal(err)
						}
						m = q
					}
					s := newSession(b, m, threads)
					for pos := range 128 {
						if _, err := s.Forward(1, pos); err != nil {
							b.Fatal(err)
						}
					}
					b.SetBytes(m.StreamedBytesPerToken())
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						if _, err := s.Forward(1, 128); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
				})
			}
		}
	}
}

// BenchmarkPrefill times a 128-token prompt pushed through in batches.
func BenchmarkPrefill(b *testing.B) {
	for _, shape := range storiesShapes {
		b.Run(shape.name, func(b *testing.B) {
			m := openModel(b, benchCheckpoint(b, shape.name, shape.cfg))
			s := newSession(b, m, 0)
			prompt := make([]int, 128)
			for i := range prompt {
				prompt[i] = (i * 7919) % shape.cfg.VocabSize
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Prefill(prompt, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(prompt))/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkGGUFFiles times a generated token (Forward at position 128) and
// a 128-token prompt on the GGUF files listed in LLAMA2_BENCH_GGUF
// (comma-separated paths, e.g. random Llama-3.2-1B or Qwen2.5-0.5B shapes
// from tools/mkgguf and llama-quantize), read into memory, at 1 and 2
// threads. Without the variable it is skipped.
func BenchmarkGGUFFiles(b *testing.B) {
	list := os.Getenv("LLAMA2_BENCH_GGUF")
	if list == "" {
		b.Skip("LLAMA2_BENCH_GGUF is not set")
	}
	for _, path := range strings.Split(list, ",") {
		m, err := OpenWith(path, OpenOptions{Mmap: MmapOff})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/tg/threads=%d", filepath.Base(path), threads), func(b *testing.B) {
				s := newSession(b, m, threads)
				for pos := range 128 {
					if _, err := s.Forward(1, pos); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(m.StreamedBytesPerToken())
				for b.Loop() {
					if _, err := s.Forward(1, 128); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
			})
			b.Run(fmt.Sprintf("%s/pp128/threads=%d", filepath.Base(path), threads), func(b *testing.B) {
				s := newSession(b, m, threads)
				prompt := make([]int, 128)
				for i := range prompt {
					prompt[i] = (i * 7919) % m.Config.VocabSize
				}
				for b.Loop() {
					if _, err := s.PrefillLogits(prompt, 0); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*len(prompt))/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}
