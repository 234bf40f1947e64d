package model

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/gguf"
	"github.com/llama2-go/llama2/internal/kernels"
	"github.com/llama2-go/llama2/tokenizer"
)

// GGUF models (llama.cpp's format): the hyperparameters and the tokenizer
// are metadata, the tensors are named and each has its own type. Only the
// `llama` architecture is read (Llama 1/2, TinyLlama, CodeLlama, Mistral
// 7B v0.1/v0.2); its Q and K weights are already in llama2.c's rotary
// layout (interleaved pairs), so no permutation is needed.

// ErrUnsupported is wrapped by the errors for files that are well formed
// but use what this package does not run: another architecture, tensor
// type, RoPE scaling or tokenizer model.
var ErrUnsupported = errors.New("not supported")

// ggufModel is what a GGUF file adds to the weights.
type ggufModel struct {
	tok          *tokenizer.Tokenizer // the vocabulary in the file, or nil
	chatTemplate string               // tokenizer.chat_template, or ""
	eos, bos     int                  // token ids; -1 when absent
	typeMix      string               // e.g. "Q4_K x 14, Q6_K x 5, F32 x 5"
	resident     bool                 // Q8_0 matrices repacked into panels (resident.go)
}

// maxDimension bounds every size read from metadata, so that products of a
// few of them fit in an int64 and a hostile file cannot ask for absurd
// allocations before the tensor shapes are checked against the file.
const maxDimension = 1 << 24

// parseGGUF reads a GGUF model's hyperparameters and weights; tensors are
// views into data. name is the file's name for errors.
func parseGGUF(data []byte, name string) (Config, weights, *ggufModel, error) {
	fail := func(err error) (Config, weights, *ggufModel, error) {
		return Config{}, weights{}, nil, fmt.Errorf("gguf %s: %w", name, err)
	}
	if !littleEndian {
		return fail(errors.New("big-endian hosts are not supported"))
	}
	f, err := gguf.Parse(data)
	if err != nil {
		return fail(err)
	}
	arch, err := f.String("general.architecture")
	if err != nil {
		return fail(err)
	}
	if arch != "llama" {
		return fail(fmt.Errorf("general.architecture is %q: only llama is %w", arch, ErrUnsupported))
	}
	cfg, err := ggufConfig(f)
	if err != nil {
		return fail(err)
	}
	w, gm, err := ggufWeights(f, &cfg)
	if err != nil {
		return fail(err)
	}
	if err := cfg.validate(); err != nil {
		return fail(err)
	}
	if err := cfg.checkKVCache(); err != nil {
		return fail(err)
	}
	if gm.resident, err = w.makeResident(&cfg); err != nil {
		return fail(err)
	}
	if has(f, "tokenizer.ggml.tokens") {
		if gm.tok, err = tokenizer.FromGGUF(f); err != nil {
			return fail(asUnsupported(err))
		}
		if n := gm.tok.VocabSize(); n != cfg.VocabSize {
			return fail(fmt.Errorf("tokenizer.ggml.tokens has %d tokens, but token_embd.weight has %d rows", n, cfg.VocabSize))
		}
	}
	if gm.chatTemplate, err = f.String("tokenizer.chat_template"); err != nil && !errors.Is(err, gguf.ErrMissing) {
		return fail(err)
	}
	if gm.bos, err = optionalToken(f, "tokenizer.ggml.bos_token_id", cfg.VocabSize); err != nil {
		return fail(err)
	}
	if gm.eos, err = optionalToken(f, "tokenizer.ggml.eos_token_id", cfg.VocabSize); err != nil {
		return fail(err)
	}
	return cfg, w, gm, nil
}

// ggufConfig reads the hyperparameters of the llama architecture.
func ggufConfig(f *gguf.File) (Config, error) {
	c := Config{GGUF: true, Version: int(f.Version)}
	for _, k := range []struct {
		key string
		dst *int
	}{
		{"llama.context_length", &c.SeqLen}, {"llama.embedding_length", &c.Dim},
		{"llama.block_count", &c.Layers}, {"llama.feed_forward_length", &c.HiddenDim},
		{"llama.attention.head_count", &c.Heads},
	} {
		v, err := dimension(f, k.key)
		if err != nil {
			return c, err
		}
		*k.dst = v
	}
	c.KVHeads = c.Heads
	if has(f, "llama.attention.head_count_kv") {
		v, err := dimension(f, "llama.attention.head_count_kv")
		if err != nil {
			return c, err
		}
		c.KVHeads = v
	}
	if c.Dim%c.Heads != 0 {
		return c, fmt.Errorf("llama.embedding_length %d is not divisible by llama.attention.head_count %d", c.Dim, c.Heads)
	}
	if has(f, "llama.rope.dimension_count") {
		v, err := dimension(f, "llama.rope.dimension_count")
		if err != nil {
			return c, err
		}
		if v != c.HeadSize() {
			return c, fmt.Errorf("llama.rope.dimension_count is %d, but the head size is %d: partial RoPE is %w", v, c.HeadSize(), ErrUnsupported)
		}
	}
	var err error
	if c.RopeTheta, err = positiveFloat(f, "llama.rope.freq_base", 10000); err != nil {
		return c, err
	}
	if c.NormEps, err = positiveFloat(f, "llama.attention.layer_norm_rms_epsilon", 1e-5); err != nil {
		return c, err
	}
	if c.RopeScale, err = ropeScale(f); err != nil {
		return c, err
	}
	return c, nil
}

// dimension reads a positive integer hyperparameter (any integer encoding).
func dimension(f *gguf.File, key string) (int, error) {
	v, err := f.Uint(key)
	if err != nil {
		return 0, err
	}
	if v == 0 || v > maxDimension {
		return 0, fmt.Errorf("%s is %d, must be in [1, %d]", key, v, maxDimension)
	}
	return int(v), nil
}

// positiveFloat reads an optional positive, finite float.
func positiveFloat(f *gguf.File, key string, def float32) (float32, error) {
	if !has(f, key) {
		return def, nil
	}
	v, err := f.Float(key)
	if err != nil {
		return 0, err
	}
	if !(v > 0) || math.IsInf(v, 0) || float32(v) == 0 {
		return 0, fmt.Errorf("%s is %g, must be a positive number", key, v)
	}
	return float32(v), nil
}

// ropeScale reads linear RoPE scaling (llama.rope.scaling.type "linear"
// with .factor, or the older llama.rope.scale_linear); other scaling types
// are an error.
func ropeScale(f *gguf.File) (float32, error) {
	if has(f, "llama.rope.scaling.type") {
		typ, err := f.String("llama.rope.scaling.type")
		if err != nil {
			return 0, err
		}
		switch typ {
		case "none":
			return 1, nil
		case "linear":
			return positiveFloat(f, "llama.rope.scaling.factor", 1)
		}
		return 0, fmt.Errorf("llama.rope.scaling.type %q is %w (only linear)", typ, ErrUnsupported)
	}
	return positiveFloat(f, "llama.rope.scale_linear", 1)
}

// noTokenU32 is how llama.cpp's tools store "no such token" in a uint32
// key (its token id -1).
const noTokenU32 = 1<<32 - 1

// optionalToken reads an optional token id, checked against the vocabulary.
func optionalToken(f *gguf.File, key string, vocab int) (int, error) {
	if !has(f, key) {
		return -1, nil
	}
	v, err := f.Uint(key)
	if err != nil || v == noTokenU32 {
		return -1, err
	}
	if v >= uint64(vocab) {
		return -1, fmt.Errorf("%s is %d, outside the vocabulary of %d tokens", key, v, vocab)
	}
	return int(v), nil
}

// ggufWeights finds, checks and views the tensors of the llama
// architecture, setting cfg's vocabulary size and shared classifier from
// them.
func ggufWeights(f *gguf.File, cfg *Config) (weights, *ggufModel, error) {
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return weights{}, nil, errors.New("tensor token_embd.weight is missing")
	}
	if len(emb.Dims) != 2 || emb.Dims[1] > maxDimension {
		return weights{}, nil, fmt.Errorf("tensor token_embd.weight has shape %v, want [%d vocab]", emb.Dims, cfg.Dim)
	}
	cfg.VocabSize = int(emb.Dims[1])
	d, h, kv, v := cfg.Dim, cfg.HiddenDim, cfg.KVDim(), cfg.VocabSize
	if cfg.Heads%cfg.KVHeads != 0 {
		return weights{}, nil, fmt.Errorf("llama.attention.head_count %d is not divisible by llama.attention.head_count_kv %d", cfg.Heads, cfg.KVHeads)
	}
	types := map[gguf.Type]int{}
	var act actForm
	get := func(name string, rows, cols int) (tensor, error) {
		info, ok := f.Tensor(name)
		if !ok {
			return tensor{}, fmt.Errorf("tensor %s is missing", name)
		}
		t, err := viewTensor(info, rows, cols)
		if err != nil {
			return tensor{}, err
		}
		types[info.Type]++
		if t.blk != nil {
			act = actForm{gs: kernels.QBlock, sums: true}
		}
		return t, nil
	}
	norm := func(name string) ([]float32, error) {
		t, err := get(name, 1, d)
		if err != nil {
			return nil, err
		}
		if t.f != nil {
			return t.f, nil
		}
		// Norms are tiny; llama.cpp keeps them F32, but any type works.
		out := make([]float32, d)
		t.rowTo(out, 0)
		return out, nil
	}
	var w weights
	var err error
	if w.tokenEmbedding, err = get("token_embd.weight", v, d); err != nil {
		return w, nil, err
	}
	if w.rmsFinal, err = norm("output_norm.weight"); err != nil {
		return w, nil, err
	}
	if _, ok := f.Tensor("output.weight"); ok {
		if w.classifier, err = get("output.weight", v, d); err != nil {
			return w, nil, err
		}
	} else {
		cfg.SharedClassifier = true // tied: the output layer is token_embd
		w.classifier = w.tokenEmbedding
	}
	w.layers = make([]layerWeights, cfg.Layers)
	for l := range w.layers {
		lw := &w.layers[l]
		p := fmt.Sprintf("blk.%d.", l)
		for _, t := range []struct {
			name       string
			dst        *tensor
			rows, cols int
		}{
			{"attn_q", &lw.wq, d, d}, {"attn_k", &lw.wk, kv, d}, {"attn_v", &lw.wv, kv, d},
			{"attn_output", &lw.wo, d, d}, {"ffn_gate", &lw.w1, h, d}, {"ffn_down", &lw.w2, d, h},
			{"ffn_up", &lw.w3, h, d},
		} {
			if *t.dst, err = get(p+t.name+".weight", t.rows, t.cols); err != nil {
				return w, nil, err
			}
		}
		if lw.rmsAtt, err = norm(p + "attn_norm.weight"); err != nil {
			return w, nil, err
		}
		if lw.rmsFFN, err = norm(p + "ffn_norm.weight"); err != nil {
			return w, nil, err
		}
	}
	w.act = act
	return w, &ggufModel{typeMix: describeTypes(types)}, nil
}

// viewTensor checks a tensor's shape against (rows, cols) (GGUF lists the
// row length first) and views its data in the tensor's type.
func viewTensor(info *gguf.TensorInfo, rows, cols int) (tensor, error) {
	want := []int64{int64(cols), int64(rows)}
	if rows == 1 {
		want = want[:1]
	}
	if !slices.Equal(info.Dims, want) {
		return tensor{}, fmt.Errorf("tensor %s has shape %v, want %v", info.Name, info.Dims, want)
	}
	t := tensor{rows: rows, cols: cols}
	switch info.Type {
	case gguf.TypeF32:
		t.f = float32s(info.Data)
	case gguf.TypeF16, gguf.TypeBF16:
		t.h = uint16s(info.Data)
		t.bf16 = info.Type == gguf.TypeBF16
	default:
		bt := kernels.Block(info.Type)
		if bt == nil {
			return tensor{}, fmt.Errorf("tensor %s has type %s, which is %w (this build runs %s)",
				info.Name, info.Type, ErrUnsupported, supportedTypes())
		}
		t.b, t.blk, t.rowBytes = info.Data, bt, cols/bt.BlockSize*bt.BlockBytes
	}
	return t, nil
}

// supportedTypes lists the tensor types this build runs.
func supportedTypes() string {
	return strings.Join(append([]string{"F32", "F16", "BF16"}, kernels.BlockTypeNames()...), ", ")
}

// describeTypes lists tensor types by how many tensors have them, most
// first: "Q4_K x 14, Q6_K x 5, F32 x 5".
func describeTypes(types map[gguf.Type]int) string {
	keys := make([]gguf.Type, 0, len(types))
	for t := range types {
		keys = append(keys, t)
	}
	slices.SortFunc(keys, func(a, b gguf.Type) int {
		if types[a] != types[b] {
			return types[b] - types[a]
		}
		return int(a) - int(b)
	})
	parts := make([]string, len(keys))
	for i, t := range keys {
		parts[i] = fmt.Sprintf("%s x %d", t, types[t])
	}
	return strings.Join(parts, ", ")
}

// uint16s views b as uint16s, copying only when b is not 2-byte aligned.
func uint16s(b []byte) []uint16 {
	n := len(b) / 2
	if n == 0 {
		return []uint16{}
	}
	p := unsafe.Pointer(&b[0])
	if uintptr(p)%2 == 0 {
		return unsafe.Slice((*uint16)(p), n)
	}
	h := make([]uint16, n)
	for i := range h {
		h[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return h
}

func has(f *gguf.File, key string) bool {
	_, ok := f.Lookup(key)
	return ok
}

// Template returns the model's chat template, parsed once: the file's
// ([Model.ChatTemplate]), or Llama 2's when it has none (llama2.c
// checkpoints included). An unparsable template is an error naming the
// file, wrapping chat.ErrSyntax.
func (m *Model) Template() (*chat.Template, error) {
	m.tmplOnce.Do(func() {
		src := m.ChatTemplate()
		if src == "" {
			src = chat.Llama2
		}
		if m.tmpl, m.tmplErr = chat.Parse(src); m.tmplErr != nil {
			m.tmplErr = fmt.Errorf("%s: tokenizer.chat_template: %w", m.path, m.tmplErr)
		}
	})
	return m.tmpl, m.tmplErr
}

// ChatPrompt renders a conversation with the model's chat template
// ([Model.ChatTemplate]; Llama 2's when the file has none) followed by the
// assistant's turn, and encodes it with tok, for [Session.Generate]. The
// special tokens the template writes (<s>, </s>, ...) are parsed; those in
// the messages stay text. A template that rejects the conversation (roles
// out of order, say) returns an error wrapping chat.ErrRaised.
func (m *Model) ChatPrompt(tok *tokenizer.Tokenizer, msgs []chat.Message) ([]int, error) {
	tmpl, err := m.Template()
	if err != nil {
		return nil, err
	}
	protected := make([]chat.Message, len(msgs))
	for i, msg := range msgs {
		protected[i] = msg // tool calls and their ids too
		protected[i].Content = tok.ProtectSpecial(msg.Content)
	}
	bosText := tok.Piece(tok.BOS())
	text, err := tmpl.Render(protected, chat.Options{
		AddGenerationPrompt: true, BOSToken: bosText, EOSToken: tok.Piece(tok.EOS()),
	})
	if err != nil {
		return nil, err
	}
	bos := tok.AddBOS() && !strings.HasPrefix(text, bosText)
	return tok.EncodeRendered(text, bos), nil
}
