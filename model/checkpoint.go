package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"unsafe"
)

// Checkpoint formats, told apart by the first four bytes.
const (
	// versionMagic ("ak42" little-endian) starts every versioned checkpoint
	// written by llama2.c's export.py; legacy files start with dim instead.
	versionMagic = 0x616b3432
	// versionedHeaderSize is the padded header of versions 1 and 2.
	versionedHeaderSize = 256
	// legacyHeaderSize is run.c's Config: seven int32.
	legacyHeaderSize = 7 * 4
	// maxKVCacheBytes bounds the per-session allocation a header can ask for
	// (layers × seq_len × kv_dim × 2 caches × 4 bytes), so a corrupt seq_len
	// fails with an error instead of exhausting memory.
	maxKVCacheBytes = 32 << 30
)

// Config is a checkpoint's header: the shape of the transformer.
type Config struct {
	Dim       int // width of the residual stream
	HiddenDim int // width of the feed-forward layer
	Layers    int // number of transformer blocks
	Heads     int // number of query heads
	KVHeads   int // number of key/value heads (fewer than Heads with grouped-query attention)
	VocabSize int // number of tokens
	SeqLen    int // maximum sequence length (context size)

	// SharedClassifier is true when the output classifier reuses the token
	// embedding table.
	SharedClassifier bool
	// Version is the file format: 0 (legacy, run.c), 1 (fp32) or 2 (Q8_0).
	Version int
	// GroupSize is the number of consecutive weights that share one scale
	// in a Q8_0 (version 2) checkpoint; 0 for fp32 checkpoints and GGUF.
	GroupSize int

	// RopeTheta is the base of the RoPE frequencies; 0 means llama2.c's
	// 10000 (GGUF's rope.freq_base: CodeLlama and Mistral v0.2 use 1e6).
	RopeTheta float32
	// RopeScale is the linear RoPE scaling factor: positions are divided
	// by it. 0 means 1 (no scaling).
	RopeScale float32
	// NormEps is the epsilon of the RMS norms; 0 means llama2.c's 1e-5.
	NormEps float32
	// GGUF is true for a model read from a GGUF file.
	GGUF bool
}

// ropeTheta, ropeScale and normEps apply the defaults of the fields.
func (c Config) ropeTheta() float32 { return cmpOr(c.RopeTheta, 10000) }
func (c Config) ropeScale() float32 { return cmpOr(c.RopeScale, 1) }
func (c Config) normEps() float32   { return cmpOr(c.NormEps, 1e-5) }

func cmpOr(v, def float32) float32 {
	if v == 0 {
		return def
	}
	return v
}

// HeadSize is the width of one attention head.
func (c Config) HeadSize() int { return c.Dim / c.Heads }

// KVDim is the width of the keys and values of one position.
func (c Config) KVDim() int { return c.HeadSize() * c.KVHeads }

// KVMul is how many query heads share one key/value head.
func (c Config) KVMul() int { return c.Heads / c.KVHeads }

// Params is the number of weights, counting a shared classifier once.
func (c Config) Params() int64 {
	d, h, l, kv := int64(c.Dim), int64(c.HiddenDim), int64(c.Layers), int64(c.KVDim())
	n := int64(c.VocabSize)*d + l*(2*d+2*d*d+2*kv*d+3*h*d) + d
	if !c.SharedClassifier {
		n += int64(c.VocabSize) * d
	}
	return n
}

// layerWeights are one transformer block's tensors: views into the mapping.
type layerWeights struct {
	rmsAtt []float32 // (dim)
	wq     tensor    // (dim, dim)
	wk     tensor    // (kv_dim, dim)
	wv     tensor    // (kv_dim, dim)
	wo     tensor    // (dim, dim)
	rmsFFN []float32 // (dim)
	w1     tensor    // (hidden, dim)
	w2     tensor    // (dim, hidden)
	w3     tensor    // (hidden, dim)

	// Biases added to the products' outputs, nil where the file has none
	// (every llama2.c checkpoint; Qwen2's q, k and v).
	bq, bo []float32 // (dim)
	bk, bv []float32 // (kv_dim)
}

// weights are the model's tensors, row-major, each a view into the mapping.
type weights struct {
	act            actForm // the int8 form the activations need
	tokenEmbedding tensor  // (vocab, dim)
	layers         []layerWeights
	rmsFinal       []float32 // (dim)
	classifier     tensor    // (vocab, dim); the embedding table when shared
	rope           ropeTable
}

// parseCheckpoint validates a checkpoint's bytes and returns its header and
// weight views into data (no copies). name is the file's name for errors.
func parseCheckpoint(data []byte, name string) (Config, weights, error) {
	fail := func(format string, args ...any) (Config, weights, error) {
		return Config{}, weights{}, fmt.Errorf("checkpoint %s: %s", name, fmt.Sprintf(format, args...))
	}
	if !littleEndian {
		return fail("big-endian hosts are not supported (checkpoints are little-endian float32)")
	}
	if len(data) < 4 {
		return fail("file is %d bytes, shorter than any checkpoint header", len(data))
	}
	cfg, headerSize, err := parseHeader(data)
	if err != nil {
		return fail("%v", err)
	}
	if err := cfg.validate(); err != nil {
		return fail("%v", err)
	}
	need, err := cfg.fileSize(headerSize)
	if err != nil {
		return fail("%v", err)
	}
	if int64(len(data)) < need {
		return fail("file is %d bytes, but its header (%s) needs %d: truncated or not a checkpoint",
			len(data), cfg.describe(), need)
	}
	if err := cfg.checkKVCache(); err != nil {
		return fail("%v", err)
	}
	return cfg, cfg.layout(data[headerSize:]), nil
}

// parseHeader reads the legacy or versioned header.
func parseHeader(data []byte) (Config, int, error) {
	le := binary.LittleEndian
	int32At := func(off int) int { return int(int32(le.Uint32(data[off:]))) }
	readDims := func(off int) Config {
		return Config{
			Dim: int32At(off), HiddenDim: int32At(off + 4), Layers: int32At(off + 8),
			Heads: int32At(off + 12), KVHeads: int32At(off + 16), VocabSize: int32At(off + 20),
			SeqLen: int32At(off + 24),
		}
	}
	if le.Uint32(data) != versionMagic {
		if len(data) < legacyHeaderSize {
			return Config{}, 0, fmt.Errorf("file is %d bytes, shorter than the %d-byte header", len(data), legacyHeaderSize)
		}
		cfg := readDims(0)
		// run.c: a negative vocab_size means the classifier is stored separately.
		cfg.SharedClassifier = cfg.VocabSize > 0
		if cfg.VocabSize < 0 && cfg.VocabSize != math.MinInt32 {
			cfg.VocabSize = -cfg.VocabSize
		}
		return cfg, legacyHeaderSize, nil
	}
	if len(data) < versionedHeaderSize {
		return Config{}, 0, fmt.Errorf("file is %d bytes, shorter than the %d-byte header", len(data), versionedHeaderSize)
	}
	version := int32At(4)
	if version != 1 && version != 2 {
		return Config{}, 0, fmt.Errorf("unknown checkpoint version %d (this build reads 0, 1 and 2)", version)
	}
	cfg := readDims(8)
	cfg.Version = int(version)
	cfg.SharedClassifier = data[36] != 0
	if version == 2 {
		// The group size follows the shared-classifier byte, unaligned.
		cfg.GroupSize = int32At(37)
		if cfg.GroupSize <= 0 {
			return Config{}, 0, fmt.Errorf("header field group_size is %d, must be positive", cfg.GroupSize)
		}
	}
	return cfg, versionedHeaderSize, nil
}

// validate checks the header's dimensions before anything is sized by them.
func (c Config) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"dim", c.Dim}, {"hidden_dim", c.HiddenDim}, {"n_layers", c.Layers}, {"n_heads", c.Heads},
		{"n_kv_heads", c.KVHeads}, {"vocab_size", c.VocabSize}, {"seq_len", c.SeqLen}} {
		if f.v <= 0 {
			return fmt.Errorf("header field %s is %d, must be positive", f.name, f.v)
		}
	}
	switch {
	case c.Dim%c.Heads != 0:
		return fmt.Errorf("dim %d is not divisible by n_heads %d", c.Dim, c.Heads)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("n_heads %d is not divisible by n_kv_heads %d", c.Heads, c.KVHeads)
	case c.HeadSize()%2 != 0:
		return fmt.Errorf("head size %d (dim %d / n_heads %d) is odd; RoPE rotates pairs", c.HeadSize(), c.Dim, c.Heads)
	}
	if c.GroupSize > 0 {
		for _, t := range c.tensorSpecs() {
			if t.quantized && (t.rows*t.cols)%int64(c.GroupSize) != 0 {
				return fmt.Errorf("group_size %d does not divide tensor %s (%d × %d values)", c.GroupSize, t.name, t.rows, t.cols)
			}
		}
	}
	return nil
}

// checkKVCache bounds what a session will allocate; version 1 files have no
// tensor sized by seq_len, so the file size alone does not bound it.
func (c Config) checkKVCache() error {
	kv, ok := mul64(int64(c.Layers), int64(c.SeqLen), int64(c.KVDim()), 2*4)
	if !ok || kv > maxKVCacheBytes {
		return fmt.Errorf("n_layers %d × seq_len %d × kv_dim %d needs a KV cache over %d GiB",
			c.Layers, c.SeqLen, c.KVDim(), maxKVCacheBytes>>30)
	}
	return nil
}

func (c Config) describe() string {
	return fmt.Sprintf("dim %d, hidden %d, %d layers, %d heads, %d kv heads, vocab %d, seq_len %d",
		c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KVHeads, c.VocabSize, c.SeqLen)
}

// tensorSpec describes count consecutive tensors of rows × cols in a file:
// one per layer, or a single one.
type tensorSpec struct {
	name       string
	count      int64
	rows, cols int64
	quantized  bool // Q8_0: each tensor's int8 values, then its float32 scales
}

// tensorSpecs lists the tensors in file order.
func (c Config) tensorSpecs() []tensorSpec {
	d, h, l := int64(c.Dim), int64(c.HiddenDim), int64(c.Layers)
	kv, v := int64(c.KVDim()), int64(c.VocabSize)
	q := c.Version == 2
	var specs []tensorSpec
	switch c.Version {
	case 0:
		specs = []tensorSpec{
			{"token_embedding", 1, v, d, false}, {"rms_att", l, 1, d, false}, {"wq", l, d, d, false},
			{"wk", l, kv, d, false}, {"wv", l, kv, d, false}, {"wo", l, d, d, false},
			{"rms_ffn", l, 1, d, false}, {"w1", l, h, d, false}, {"w2", l, d, h, false},
			{"w3", l, h, d, false}, {"rms_final", 1, 1, d, false},
			// Two obsolete RoPE tables (freq_cis_real, freq_cis_imag): skipped.
			{"freq_cis", 2, int64(c.SeqLen), int64(c.HeadSize() / 2), false},
		}
	default:
		specs = []tensorSpec{
			{"rms_att", l, 1, d, false}, {"rms_ffn", l, 1, d, false}, {"rms_final", 1, 1, d, false},
			{"token_embedding", 1, v, d, q}, {"wq", l, d, d, q}, {"wk", l, kv, d, q}, {"wv", l, kv, d, q},
			{"wo", l, d, d, q}, {"w1", l, h, d, q}, {"w2", l, d, h, q}, {"w3", l, h, d, q},
		}
	}
	if !c.SharedClassifier {
		specs = append(specs, tensorSpec{"classifier", 1, v, d, q})
	}
	return specs
}

// bytes is the size of one tensor of t in the file.
func (t tensorSpec) bytes(gs int) (int64, bool) {
	n, ok := mul64(t.rows, t.cols)
	if !ok {
		return 0, false
	}
	if t.quantized {
		return n + 4*(n/int64(gs)), n < 1<<60
	}
	return mul64(4, n)
}

// fileSize is the number of bytes the header implies, computed in 64 bits
// with overflow checks (llama2.c overflowed 32-bit offsets on 13B models).
func (c Config) fileSize(headerSize int) (int64, error) {
	total := int64(headerSize)
	for _, t := range c.tensorSpecs() {
		one, ok := t.bytes(c.GroupSize)
		n, ok2 := mul64(t.count, one)
		if !ok || !ok2 || total+n < total {
			return 0, fmt.Errorf("tensor %s of the header (%s) does not fit in 64 bits", t.name, c.describe())
		}
		total += n
	}
	return total, nil
}

// layout cuts body (the bytes after the header, already checked to be long
// enough) into the weight tensors: views into body, except the scales of a
// Q8_0 tensor that are not 4-byte aligned, which are copied.
func (c Config) layout(body []byte) weights {
	tensors := make(map[string][]tensor)
	off := int64(0)
	for _, t := range c.tensorSpecs() {
		for range t.count {
			n := t.rows * t.cols
			tt := tensor{rows: int(t.rows), cols: int(t.cols)}
			if t.quantized {
				tt.gs = c.GroupSize
				tt.q = unsafe.Slice((*int8)(unsafe.Pointer(&body[off])), n)
				tt.s = float32s(body[off+n : off+n+4*(n/int64(c.GroupSize))])
			} else {
				tt.f = float32s(body[off : off+4*n])
			}
			size, _ := t.bytes(c.GroupSize)
			off += size
			tensors[t.name] = append(tensors[t.name], tt)
		}
	}
	w := weights{
		act:            actForm{gs: c.GroupSize},
		tokenEmbedding: tensors["token_embedding"][0],
		layers:         make([]layerWeights, c.Layers),
		rmsFinal:       tensors["rms_final"][0].f,
		rope:           newRopeTable(c, ropeAdjacent, nil),
	}
	if c.SharedClassifier {
		w.classifier = w.tokenEmbedding
	} else {
		w.classifier = tensors["classifier"][0]
	}
	for l := range w.layers {
		w.layers[l] = layerWeights{
			rmsAtt: tensors["rms_att"][l].f,
			wq:     tensors["wq"][l],
			wk:     tensors["wk"][l],
			wv:     tensors["wv"][l],
			wo:     tensors["wo"][l],
			rmsFFN: tensors["rms_ffn"][l].f,
			w1:     tensors["w1"][l],
			w2:     tensors["w2"][l],
			w3:     tensors["w3"][l],
		}
	}
	return w
}

// float32s views b as float32s, copying only when b is not 4-byte aligned.
func float32s(b []byte) []float32 {
	n := len(b) / 4
	if n == 0 {
		return []float32{}
	}
	p := unsafe.Pointer(&b[0])
	if uintptr(p)%4 == 0 {
		return unsafe.Slice((*float32)(p), n)
	}
	f := make([]float32, n)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return f
}

// mul64 multiplies non-negative factors, reporting false on overflow.
func mul64(xs ...int64) (int64, bool) {
	p := uint64(1)
	for _, x := range xs {
		if x < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(p, uint64(x))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		p = lo
	}
	return int64(p), true
}

// littleEndian reports whether the host stores numbers as the files do.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
