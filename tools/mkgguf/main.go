// Command mkgguf writes a GGUF model of random weights in a real model's
// shape, for benchmarks: llama-quantize turns its F32 or F16 output into
// the block types. The vocabulary (tokenizer.* keys) is copied from a
// GGUF file given with -vocab, such as llama.cpp's vocabulary-only files.
//
//	go run ./tools/mkgguf -o /tmp/tinyllama-f16.gguf -type f16 \
//	    -dim 2048 -hidden 5632 -layers 22 -heads 32 -kv 4 \
//	    -vocab testdata/gguf/ggml-vocab-llama-spm.gguf
//
// Shapes of the models the README measures:
//
//	TinyLlama-1.1B  -dim 2048 -hidden 5632 -layers 22 -heads 32 -kv 4 (vocab llama-spm)
//	Llama-3.2-1B    -dim 2048 -hidden 8192 -layers 16 -heads 32 -kv 8 -rope-base 500000 -tied (vocab llama3)
//	Qwen2.5-0.5B    -arch qwen2 -dim 896 -hidden 4864 -layers 24 -heads 14 -kv 2 -rope-base 1e6 -eps 1e-6 -tied -bias (vocab qwen2)
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/llama2-go/llama2/gguf"
	"github.com/llama2-go/llama2/internal/kernels"
)

func main() {
	arch := flag.String("arch", "llama", "general.architecture")
	dim := flag.Int("dim", 2048, "model width")
	hidden := flag.Int("hidden", 5632, "FFN width")
	layers := flag.Int("layers", 22, "layers")
	heads := flag.Int("heads", 32, "query heads")
	kv := flag.Int("kv", 4, "key/value heads")
	ctx := flag.Int("ctx", 2048, "context length")
	ropeBase := flag.Float64("rope-base", 10000, "RoPE frequency base")
	eps := flag.Float64("eps", 1e-5, "RMS norm epsilon")
	tied := flag.Bool("tied", false, "no output.weight: the classifier is the token embedding")
	bias := flag.Bool("bias", false, "biases on attn_q, attn_k, attn_v (qwen2)")
	typ := flag.String("type", "f16", "weight type of the matrices: f32 or f16")
	vocabFile := flag.String("vocab", "", "GGUF file whose tokenizer.* keys to copy (required)")
	seed := flag.Uint64("seed", 1, "PRNG seed")
	out := flag.String("o", "", "output path (required)")
	flag.Parse()
	if *out == "" || *vocabFile == "" {
		flag.Usage()
		os.Exit(2)
	}
	wt := map[string]gguf.Type{"f32": gguf.TypeF32, "f16": gguf.TypeF16}[*typ]
	if *typ != "f32" && *typ != "f16" {
		log.Fatalf("-type %q: want f32 or f16", *typ)
	}

	vf, err := gguf.ReadMetadata(*vocabFile)
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := vf.Strings("tokenizer.ggml.tokens")
	if err != nil {
		log.Fatal(err)
	}
	nVocab := len(tokens)

	b := gguf.NewBuilder()
	p := *arch + "."
	b.Add("general.architecture", *arch)
	b.Add("general.name", fmt.Sprintf("random %s %dx%d", *arch, *layers, *dim))
	b.Add(p+"context_length", uint32(*ctx))
	b.Add(p+"embedding_length", uint32(*dim))
	b.Add(p+"feed_forward_length", uint32(*hidden))
	b.Add(p+"block_count", uint32(*layers))
	b.Add(p+"attention.head_count", uint32(*heads))
	b.Add(p+"attention.head_count_kv", uint32(*kv))
	b.Add(p+"rope.freq_base", float32(*ropeBase))
	b.Add(p+"attention.layer_norm_rms_epsilon", float32(*eps))
	b.Add(p+"rope.dimension_count", uint32(*dim / *heads))
	b.Add(p+"vocab_size", uint32(nVocab))
	b.Add("general.file_type", uint32(map[gguf.Type]uint32{gguf.TypeF32: 0, gguf.TypeF16: 1}[wt]))
	for _, kv := range vf.KV {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			b.Add(kv.Key, kv.Value.Interface())
		}
	}

	r := rand.New(rand.NewPCG(*seed, 0x6767))
	headDim := *dim / *heads
	kvDim := headDim * *kv
	matrix := func(name string, rows, cols int, t gguf.Type) {
		scale := 1 / math.Sqrt(float64(cols))
		b.AddTensor(name, t, []int64{int64(cols), int64(rows)}, values(r, rows*cols, scale, 0, t))
	}
	vector := func(name string, n int, mean, scale float64) {
		b.AddTensor(name, gguf.TypeF32, []int64{int64(n)}, values(r, n, scale, mean, gguf.TypeF32))
	}
	matrix("token_embd.weight", nVocab, *dim, wt)
	for l := range *layers {
		n := fmt.Sprintf("blk.%d.", l)
		vector(n+"attn_norm.weight", *dim, 1, 0.1)
		matrix(n+"attn_q.weight", *dim, *dim, wt)
		matrix(n+"attn_k.weight", kvDim, *dim, wt)
		matrix(n+"attn_v.weight", kvDim, *dim, wt)
		if *bias {
			vector(n+"attn_q.bias", *dim, 0, 0.1)
			vector(n+"attn_k.bias", kvDim, 0, 0.1)
			vector(n+"attn_v.bias", kvDim, 0, 0.1)
		}
		matrix(n+"attn_output.weight", *dim, *dim, wt)
		vector(n+"ffn_norm.weight", *dim, 1, 0.1)
		matrix(n+"ffn_gate.weight", *hidden, *dim, wt)
		matrix(n+"ffn_up.weight", *hidden, *dim, wt)
		matrix(n+"ffn_down.weight", *dim, *hidden, wt)
	}
	vector("output_norm.weight", *dim, 1, 0.1)
	if !*tied {
		matrix("output.weight", nVocab, *dim, wt)
	}

	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 4<<20)
	if _, err := b.WriteTo(w); err != nil {
		log.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

// values returns n values mean + N(0, 1)*scale as little-endian F32 or F16.
func values(r *rand.Rand, n int, scale, mean float64, t gguf.Type) []byte {
	size := 4
	if t == gguf.TypeF16 {
		size = 2
	}
	out := make([]byte, n*size)
	for i := range n {
		v := float32(mean + r.NormFloat64()*scale)
		if t == gguf.TypeF16 {
			binary.LittleEndian.PutUint16(out[2*i:], kernels.F32ToF16(v))
		} else {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
	}
	return out
}
