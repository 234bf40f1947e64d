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
// are metadata, the tensors are named and each has its own type. What
// differs between architectures (general.architecture) is data, in
// arch.go; the `llama` architecture's Q and K weights are already in
// llama2.c's rotary layout (adjacent pairs), so no permutation is needed.

// ErrUnsupported is wrapped by the errors for files that are well formed
// but use what this package does not run: another architecture, tensor
// type or RoPE scaling.
var ErrUnsupported = errors.New("not supported")

// ggufModel is what a GGUF file adds to the weights.
type ggufModel struct {
	tok          *tokenizer.Tokenizer // the vocabulary in the file, or nil
	tokErr       error                // why tok is nil though the file has a vocabulary
	chatTemplate string               // tokenizer.chat_template, or ""
	eos, bos     int                  // token ids; -1 when absent
	typeMix      string               // e.g. "Q4_K x 14, Q6_K x 5, F32 x 5"
	resident     string               // the types repacked into panels, "Q4_K, Q6_K" (resident.go)
	arch         string               // general.architecture
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
	archName, err := f.String("general.architecture")
	if err != nil {
		return fail(err)
	}
	arch, err := lookupArch(archName)
	if err != nil {
		return fail(err)
	}
	cfg, err := ggufConfig(f, archName, arch)
	if err != nil {
		return fail(err)
	}
	w, gm, err := ggufWeights(f, &cfg, archName, arch)
	if err != nil {
		return fail(err)
	}
	gm.arch = archName
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
		gm.tok, err = tokenizer.FromGGUF(f)
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			// The weights run without it: token ids in, logits out.
			gm.tokErr = asUnsupported(fmt.Errorf("gguf %s: %w", name, err))
		case err != nil:
			return fail(err)
		case gm.tok.VocabSize() != cfg.VocabSize:
			return fail(fmt.Errorf("tokenizer.ggml.tokens has %d tokens, but token_embd.weight has %d rows", gm.tok.VocabSize(), cfg.VocabSize))
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

// ggufConfig reads the hyperparameters, each under the architecture's
// prefix (llama.embedding_length, qwen2.embedding_length, ...).
func ggufConfig(f *gguf.File, archName string, arch *archSpec) (Config, error) {
	c := Config{GGUF: true, Version: int(f.Version)}
	p := archName + "."
	for _, k := range []struct {
		key string
		dst *int
	}{
		{"context_length", &c.SeqLen}, {"embedding_length", &c.Dim},
		{"block_count", &c.Layers}, {"feed_forward_length", &c.HiddenDim},
		{"attention.head_count", &c.Heads},
	} {
		v, err := dimension(f, p+k.key)
		if err != nil {
			return c, err
		}
		*k.dst = v
	}
	c.KVHeads = c.Heads
	if has(f, p+"attention.head_count_kv") {
		v, err := dimension(f, p+"attention.head_count_kv")
		if err != nil {
			return c, err
		}
		c.KVHeads = v
	}
	if c.Dim%c.Heads != 0 {
		return c, fmt.Errorf("%sembedding_length %d is not divisible by %sattention.head_count %d", p, c.Dim, p, c.Heads)
	}
	// Heads of another width than dim/heads (Gemma's key_length) and
	// partial RoPE are not run.
	for _, k := range []string{"rope.dimension_count", "attention.key_length", "attention.value_length"} {
		if !has(f, p+k) {
			continue
		}
		v, err := dimension(f, p+k)
		if err != nil {
			return c, err
		}
		if v != c.HeadSize() {
			return c, fmt.Errorf("%s%s is %d, but the head size is %d (embedding_length / head_count): %w", p, k, v, c.HeadSize(), ErrUnsupported)
		}
	}
	var err error
	if c.RopeTheta, err = positiveFloat(f, p+"rope.freq_base", 10000); err != nil {
		return c, err
	}
	if c.NormEps, err = positiveFloat(f, p+arch.epsKey, 1e-5); err != nil {
		return c, err
	}
	if c.RopeScale, err = ropeScale(f, p); err != nil {
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
	if !(v > 0) || math.IsInf(v, 0) || float32(v) == 0 || math.IsInf(float64(float32(v)), 0) {
		return 0, fmt.Errorf("%s is %g, must be a positive number", key, v)
	}
	return float32(v), nil
}

// ropeScale reads RoPE scaling under prefix p: rope.scaling.type "none",
// or "linear" with rope.scaling.factor (or the older rope.scale_linear).
// YaRN, LongRoPE and any other type are an error: their frequencies are
// not computed here. (Llama 3.1's scaling comes as the rope_freqs tensor,
// with no rope.scaling keys.)
func ropeScale(f *gguf.File, p string) (float32, error) {
	if has(f, p+"rope.scaling.type") {
		typ, err := f.String(p + "rope.scaling.type")
		if err != nil {
			return 0, err
		}
		switch typ {
		case "none":
			return 1, nil
		case "linear":
			return positiveFloat(f, p+"rope.scaling.factor", 1)
		}
		return 0, fmt.Errorf("%srope.scaling.type %q is %w (only none and linear)", p, typ, ErrUnsupported)
	}
	if has(f, p+"rope.scaling.factor") {
		return 0, fmt.Errorf("%srope.scaling.factor without %srope.scaling.type: the scaling is unknown", p, p)
	}
	return positiveFloat(f, p+"rope.scale_linear", 1)
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

// ggufWeights finds, checks and views the tensors arch reads, setting
// cfg's vocabulary size and shared classifier from them, and makes the
// model's RoPE table.
func ggufWeights(f *gguf.File, cfg *Config, archName string, arch *archSpec) (weights, *ggufModel, error) {
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return weights{}, nil, errors.New("tensor token_embd.weight is missing")
	}
	if len(emb.Dims) != 2 || emb.Dims[1] > maxDimension {
		return weights{}, nil, fmt.Errorf("tensor token_embd.weight has shape %v, want [%d vocab]", emb.Dims, cfg.Dim)
	}
	cfg.VocabSize = int(emb.Dims[1])
	if cfg.Heads%cfg.KVHeads != 0 {
		return weights{}, nil, fmt.Errorf("attention.head_count %d is not divisible by attention.head_count_kv %d", cfg.Heads, cfg.KVHeads)
	}
	if cfg.HeadSize()%2 != 0 {
		return weights{}, nil, fmt.Errorf("head size %d is odd; RoPE rotates pairs", cfg.HeadSize())
	}
	// The layers are counted from the metadata, but each needs its
	// tensors: a count the file cannot hold fails before anything is
	// allocated from it.
	if per := arch.requiredPerLayer(); cfg.Layers > len(f.Tensors)/per {
		return weights{}, nil, fmt.Errorf("%s.block_count is %d, but the file has %d tensors, enough for at most %d layers of %d",
			archName, cfg.Layers, len(f.Tensors), len(f.Tensors)/per, per)
	}
	l := loader{f: f, cfg: cfg, types: map[gguf.Type]int{}, read: map[string]bool{}}
	w := weights{layers: make([]layerWeights, cfg.Layers)}
	var factors []float32
	for _, t := range arch.tensors {
		if !t.role.perLayer() {
			if err := l.load(&w, t, -1, &factors); err != nil {
				return w, nil, err
			}
			continue
		}
		for i := range w.layers {
			if err := l.load(&w, t, i, &factors); err != nil {
				return w, nil, err
			}
		}
	}
	// Every tensor must be one the forward pass reads.
	for _, t := range f.Tensors {
		if !l.read[t.Name] {
			return w, nil, fmt.Errorf("tensor %s is not one that architecture %s reads (or its layer is past block_count %d)",
				t.Name, archName, cfg.Layers)
		}
	}
	if w.classifier.rows == 0 {
		cfg.SharedClassifier = true // tied: the output layer is token_embd
		w.classifier = w.tokenEmbedding
	}
	for _, v := range factors {
		if !(v > 0) || math.IsInf(float64(v), 0) {
			return w, nil, fmt.Errorf("tensor rope_freqs.weight holds %g, must be positive and finite", v)
		}
	}
	w.rope = newRopeTable(*cfg, arch.rope, factors)
	w.act = l.act
	return w, &ggufModel{typeMix: describeTypes(l.types)}, nil
}

// loader reads the tensors of one file into weights.
type loader struct {
	f     *gguf.File
	cfg   *Config
	types map[gguf.Type]int // tensors by type, for Model.Format
	read  map[string]bool   // the tensors read
	act   actForm           // the activations' int8 form the matrices need
}

// load reads the tensor t (of layer i, for a layer's) into w, or into
// *factors for rope_freqs; an optional tensor may be absent.
func (l *loader) load(w *weights, t archTensor, i int, factors *[]float32) error {
	name := t.name
	if i >= 0 {
		name = fmt.Sprintf("blk.%d.%s", i, t.name)
	}
	info, ok := l.f.Tensor(name)
	if !ok {
		if t.required {
			return fmt.Errorf("tensor %s is missing", name)
		}
		return nil
	}
	l.read[name] = true
	c := l.cfg
	d, h, kv := c.Dim, c.HiddenDim, c.KVDim()
	var lw *layerWeights
	if i >= 0 {
		lw = &w.layers[i]
	}
	matrix := func(dst *tensor, rows, cols int) error {
		v, err := viewTensor(info, rows, cols)
		if err != nil {
			return err
		}
		l.types[info.Type]++
		if v.blk != nil {
			l.act = actForm{gs: kernels.QBlock, sums: true}
		}
		*dst = v
		return nil
	}
	vector := func(dst *[]float32, n int) error {
		// Norms, biases and RoPE factors are tiny; llama.cpp keeps them
		// F32, but any type works.
		var v tensor
		if err := matrix(&v, 1, n); err != nil {
			return err
		}
		if v.f == nil {
			v.f = make([]float32, n)
			v.rowTo(v.f, 0)
		}
		*dst = v.f
		return nil
	}
	switch t.role {
	case roleEmbedding:
		return matrix(&w.tokenEmbedding, c.VocabSize, d)
	case roleOutput:
		return matrix(&w.classifier, c.VocabSize, d)
	case roleOutputNorm:
		return vector(&w.rmsFinal, d)
	case roleRopeFreqs:
		return vector(factors, c.HeadSize()/2)
	case roleAttnNorm:
		return vector(&lw.rmsAtt, d)
	case roleFFNNorm:
		return vector(&lw.rmsFFN, d)
	case roleWQ:
		return matrix(&lw.wq, d, d)
	case roleWK:
		return matrix(&lw.wk, kv, d)
	case roleWV:
		return matrix(&lw.wv, kv, d)
	case roleWO:
		return matrix(&lw.wo, d, d)
	case roleW1:
		return matrix(&lw.w1, h, d)
	case roleW2:
		return matrix(&lw.w2, d, h)
	case roleW3:
		return matrix(&lw.w3, h, d)
	case roleBQ:
		return vector(&lw.bq, d)
	case roleBK:
		return vector(&lw.bk, kv)
	case roleBV:
		return vector(&lw.bv, kv)
	case roleBO:
		return vector(&lw.bo, d)
	}
	return fmt.Errorf("tensor %s: no place for role %d", name, t.role)
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
				info.Name, info.Type, ErrUnsupported, strings.Join(TensorTypeNames(), ", "))
		}
		t.b, t.blk, t.rowBytes = info.Data, bt, cols/bt.BlockSize*bt.BlockBytes
	}
	return t, nil
}

// TensorTypeNames lists the GGUF tensor types this build runs: the float
// types, then the block types sorted by name.
func TensorTypeNames() []string {
	return append([]string{"F32", "F16", "BF16"}, kernels.BlockTypeNames()...)
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
