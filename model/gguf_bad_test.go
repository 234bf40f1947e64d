package model

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/gguf"
)

// tinyGGUF describes a small llama GGUF model for tests: dim 8, hidden 16,
// one layer, 2 heads sharing one KV head, vocabulary 8. edit may change the
// metadata and tensors before the file is written.
type tinyGGUF struct {
	kv      map[string]any
	tensors map[string]tinyTensor
	order   []string
	values  map[string][]float32 // F32 values of a tensor, instead of seeded ones
}

// set adds or replaces an F32 tensor of shape dims, with values vals (nil:
// seeded ones).
func (g *tinyGGUF) set(name string, vals []float32, dims ...int64) {
	if _, ok := g.tensors[name]; !ok {
		g.order = append(g.order, name)
	}
	g.tensors[name] = tinyTensor{gguf.TypeF32, dims}
	if vals != nil {
		if g.values == nil {
			g.values = map[string][]float32{}
		}
		g.values[name] = vals
	}
}

type tinyTensor struct {
	typ  gguf.Type
	dims []int64
}

func newTinyGGUF() *tinyGGUF {
	g := &tinyGGUF{kv: map[string]any{
		"general.architecture":                   "llama",
		"llama.context_length":                   uint32(16),
		"llama.embedding_length":                 uint32(8),
		"llama.block_count":                      uint32(1),
		"llama.feed_forward_length":              uint32(16),
		"llama.attention.head_count":             uint32(2),
		"llama.attention.head_count_kv":          uint64(1), // 64-bit, as some writers do
		"llama.rope.dimension_count":             uint32(4),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-6),
		"tokenizer.ggml.eos_token_id":            uint32(2),
	}, tensors: map[string]tinyTensor{}}
	add := func(name string, dims ...int64) {
		g.tensors[name] = tinyTensor{gguf.TypeF32, dims}
		g.order = append(g.order, name)
	}
	add("token_embd.weight", 8, 8)
	add("output_norm.weight", 8)
	for _, t := range []struct {
		name string
		dims []int64
	}{
		{"attn_norm", []int64{8}}, {"attn_q", []int64{8, 8}}, {"attn_k", []int64{8, 4}},
		{"attn_v", []int64{8, 4}}, {"attn_output", []int64{8, 8}}, {"ffn_norm", []int64{8}},
		{"ffn_gate", []int64{8, 16}}, {"ffn_down", []int64{16, 8}}, {"ffn_up", []int64{8, 16}},
	} {
		add("blk.0."+t.name+".weight", t.dims...)
	}
	return g
}

// bytes writes the file, with seeded small weights.
func (g *tinyGGUF) bytes(t *testing.T) []byte {
	t.Helper()
	data, err := g.builder()
	require.NoError(t, err)
	return data
}

// builder encodes the file.
func (g *tinyGGUF) builder() ([]byte, error) {
	b := gguf.NewBuilder()
	for k, v := range g.kv {
		b.Add(k, v)
	}
	seed := uint32(1)
	for _, name := range g.order {
		tt, ok := g.tensors[name]
		if !ok {
			continue
		}
		n := int64(1)
		for _, d := range tt.dims {
			n *= d
		}
		size, ok := tt.typ.RowBytes(n)
		if !ok {
			return nil, fmt.Errorf("%s: %d values of %s", name, n, tt.typ)
		}
		data := make([]byte, size)
		for i := range data {
			seed = seed*1664525 + 1013904223
			data[i] = byte(seed >> 24)
		}
		if tt.typ == gguf.TypeF32 { // finite floats in (-1, 1)
			f := float32s(data)
			for i := range f {
				f[i] = float32(int8(data[4*i]))/256 + 0.01
			}
			copy(f, g.values[name])
		}
		b.AddTensor(name, tt.typ, tt.dims, data)
	}
	return b.Bytes()
}

// write writes the file into a temporary directory and returns its path.
func (g *tinyGGUF) write(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	require.NoError(t, os.WriteFile(path, g.bytes(t), 0o644))
	return path
}

// TestTinyGGUFRuns: the valid tiny file opens, takes its settings from the
// metadata and runs.
func TestTinyGGUFRuns(t *testing.T) {
	m := openModel(t, newTinyGGUF().write(t))
	c := m.Config
	require.Equal(t, Config{Dim: 8, HiddenDim: 16, Layers: 1, Heads: 2, KVHeads: 1, VocabSize: 8, SeqLen: 16,
		SharedClassifier: true, Version: 3, RopeTheta: 10000, RopeScale: 1, NormEps: 1e-6, GGUF: true}, c)
	require.Equal(t, 2, m.EOS())
	require.Nil(t, m.Tokenizer())
	require.Equal(t, "GGUF v3 (F32 x 11)", m.Format())
	s := newSession(t, m, 1)
	logits, err := s.Forward(3, 0)
	require.NoError(t, err)
	require.Len(t, logits, 8)
}

// TestBadGGUFModels: each malformed or unsupported model fails to open
// with one line naming the file and what is wrong.
func TestBadGGUFModels(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(g *tinyGGUF)
		want    string
		errorIs error
	}{
		{"architecture", func(g *tinyGGUF) { g.kv["general.architecture"] = "gpt2" }, `general.architecture is "gpt2"`, ErrUnsupported},
		{"no architecture", func(g *tinyGGUF) { delete(g.kv, "general.architecture") }, "general.architecture", gguf.ErrMissing},
		{"missing hyperparameter", func(g *tinyGGUF) { delete(g.kv, "llama.block_count") }, "llama.block_count", gguf.ErrMissing},
		{"zero heads", func(g *tinyGGUF) { g.kv["llama.attention.head_count"] = uint32(0) }, "llama.attention.head_count is 0", nil},
		{"negative dim", func(g *tinyGGUF) { g.kv["llama.embedding_length"] = int32(-8) }, "llama.embedding_length", nil},
		{"string dim", func(g *tinyGGUF) { g.kv["llama.embedding_length"] = "8" }, "llama.embedding_length", gguf.ErrType},
		{"huge context", func(g *tinyGGUF) { g.kv["llama.context_length"] = uint64(1 << 40) }, "llama.context_length", nil},
		{"kv heads", func(g *tinyGGUF) { g.kv["llama.attention.head_count_kv"] = uint32(3) }, "head_count_kv 3", nil},
		{"rope dims", func(g *tinyGGUF) { g.kv["llama.rope.dimension_count"] = uint32(2) }, "llama.rope.dimension_count is 2", ErrUnsupported},
		{"rope scaling", func(g *tinyGGUF) { g.kv["llama.rope.scaling.type"] = "yarn" }, `"yarn"`, ErrUnsupported},
		{"eps", func(g *tinyGGUF) { g.kv["llama.attention.layer_norm_rms_epsilon"] = float32(-1) }, "layer_norm_rms_epsilon", nil},
		{"eos", func(g *tinyGGUF) { g.kv["tokenizer.ggml.eos_token_id"] = uint32(8) }, "eos_token_id is 8", nil},
		{"missing tensor", func(g *tinyGGUF) { delete(g.tensors, "blk.0.ffn_up.weight") }, "tensor blk.0.ffn_up.weight is missing", nil},
		{"missing embedding", func(g *tinyGGUF) { delete(g.tensors, "token_embd.weight") }, "token_embd.weight is missing", nil},
		{"shape", func(g *tinyGGUF) { g.tensors["blk.0.attn_k.weight"] = tinyTensor{gguf.TypeF32, []int64{8, 8}} }, "blk.0.attn_k.weight has shape [8 8], want [8 4]", nil},
		{"unsupported type", func(g *tinyGGUF) {
			g.kv["llama.embedding_length"] = uint32(256)
			g.kv["llama.rope.dimension_count"] = uint32(128)
			for name, tt := range g.tensors {
				if tt.dims[0] == 8 {
					tt.dims = append([]int64{256}, tt.dims[1:]...)
				}
				if len(tt.dims) > 1 && tt.dims[1] == 8 {
					tt.dims = []int64{tt.dims[0], 256}
				}
				if len(tt.dims) > 1 && tt.dims[1] == 4 {
					tt.dims = []int64{tt.dims[0], 128}
				}
				g.tensors[name] = tt
			}
			g.tensors["blk.0.attn_q.weight"] = tinyTensor{gguf.TypeQ2_K, []int64{256, 256}}
		}, "blk.0.attn_q.weight has type Q2_K", ErrUnsupported},
		{"tokenizer scores", func(g *tinyGGUF) {
			g.kv["tokenizer.ggml.model"] = "llama"
			g.kv["tokenizer.ggml.tokens"] = []string{"a", "b", "c", "d", "e", "f", "g", "h"}
			g.kv["tokenizer.ggml.scores"] = []float32{1, 2}
		}, "tokenizer.ggml.scores has 2 entries", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newTinyGGUF()
			c.edit(g)
			requireOpenError(t, g.write(t), c.want, c.errorIs)
		})
	}
}

// requireOpenError checks that the model at path fails to open with one
// line naming the file and containing want, wrapping errorIs if not nil.
func requireOpenError(t *testing.T, path, want string, errorIs error) {
	t.Helper()
	m, err := Open(path)
	if err == nil {
		m.Close()
	}
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, path)
	require.Contains(t, msg, want)
	require.NotContains(t, msg, "\n")
	if errorIs != nil {
		require.True(t, errors.Is(err, errorIs), "%v is not %v", err, errorIs)
	}
}

// TestTruncatedGGUFModel: every truncation of a valid model fails cleanly.
func TestTruncatedGGUFModel(t *testing.T) {
	data := newTinyGGUF().bytes(t)
	dir := t.TempDir()
	for _, n := range []int{0, 3, 4, 10, 24, 100, len(data) / 2, len(data) - 1} {
		path := filepath.Join(dir, fmt.Sprintf("cut%d.gguf", n))
		require.NoError(t, os.WriteFile(path, data[:n], 0o644))
		m, err := Open(path)
		if err == nil {
			m.Close()
		}
		require.Error(t, err, "%d bytes", n)
		require.False(t, strings.Contains(err.Error(), "\n"))
	}
}

// TestStreamedBytesPerTokenGGUF counts what a token reads in randk's files.
func TestStreamedBytesPerTokenGGUF(t *testing.T) {
	// dim 256, hidden 768, 2 layers, kv_dim 128, vocab 512, separate output.
	layer := int64(256*256 + 2*128*256 + 256*256 + 3*768*256)
	norms := int64(256 * 5)
	f32 := openModel(t, fixture(t, "gguf/randk-f32.gguf"))
	require.Equal(t, 4*(2*layer+512*256+256+norms), f32.StreamedBytesPerToken())
	tied := openModel(t, fixture(t, "gguf/randk-tied-f32.gguf"))
	require.Equal(t, 4*(2*layer+512*256+norms), tied.StreamedBytesPerToken())
	q8 := openModel(t, fixture(t, "gguf/randk-Q8_0.gguf"))
	require.Less(t, q8.StreamedBytesPerToken(), f32.StreamedBytesPerToken()/3)
}

// FuzzParseGGUFModel: any bytes either fail to open as a GGUF model or give
// a model whose weights lie inside the data and which runs a position.
func FuzzParseGGUFModel(f *testing.F) {
	valid := newTinyGGUF()
	data, err := valid.builder()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	tied := newTinyGGUF()
	tied.kv["tokenizer.ggml.model"] = "llama"
	tied.kv["tokenizer.ggml.tokens"] = []string{"<unk>", "<s>", "</s>", "▁a", "b", "▁", "<0x41>", "ab"}
	tied.kv["tokenizer.ggml.token_type"] = []int32{2, 3, 3, 1, 1, 1, 6, 1}
	if data, err = tied.builder(); err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	// The architecture table's cases: qwen2 with its biases; llama with
	// every optional tensor; counts the tensors cannot back.
	full := newTinyGGUF()
	full.set("rope_freqs.weight", []float32{1, 3}, 2)
	full.set("blk.0.attn_q.bias", nil, 8)
	full.set("blk.0.attn_output.bias", nil, 8)
	huge := newTinyGGUF()
	huge.kv["llama.block_count"] = uint32(maxDimension)
	for _, g := range []*tinyGGUF{newTinyGGUF().toQwen2(), full, huge} {
		if data, err = g.builder(); err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, w, gm, err := parseGGUF(aligned(data), "fuzz.gguf")
		if err != nil {
			return
		}
		m := &Model{Config: c, w: w, gguf: gm, unmap: func() error { return nil }}
		if kv, _ := mul64(int64(c.Layers), int64(c.SeqLen), int64(c.KVDim()), 8); kv > 64<<20 {
			return // a KV cache too large for this test is fine
		}
		s, err := m.NewSession(SessionOptions{Threads: 1, Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.PrefillLogits([]int{0, 0}[:min(2, c.SeqLen)], 0); err != nil {
			t.Fatal(err)
		}
	})
}
