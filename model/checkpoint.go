package model

import (
	"encoding/binary"
	"errors"
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
	wq     []float32 // (dim, dim)
	wk     []float32 // (kv_dim, dim)
	wv     []float32 // (kv_dim, dim)
	wo     []float32 // (dim, dim)
	rmsFFN []float32 // (dim)
	w1     []float32 // (hidden, dim)
	w2     []float32 // (dim, hidden)
	w3     []float32 // (hidden, dim)
}

// weights are the model's tensors, row-major, each a view into the mapping.
type weights struct {
	tokenEmbedding []float32 // (vocab, dim)
	layers         []layerWeights
	rmsFinal       []float32 // (dim)
	classifier     []float32 // (vocab, dim); the embedding table when shared
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
	if uintptr(unsafe.Pointer(unsafe.SliceData(data)))%4 != 0 {
		return fail("internal error: data is not 4-byte aligned")
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
	switch version {
	case 1:
	case 2:
		return Config{}, 0, errors.New("version 2 (Q8_0 int8) checkpoints are not supported yet")
	default:
		return Config{}, 0, fmt.Errorf("unknown checkpoint version %d (this build reads 0 and 1)", version)
	}
	cfg := readDims(8)
	cfg.Version = int(version)
	cfg.SharedClassifier = data[36] != 0
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

// tensorSizes lists the float32 counts of the tensors in file order.
func (c Config) tensorSizes() []tensorSize {
	d, h, l := int64(c.Dim), int64(c.HiddenDim), int64(c.Layers)
	kv, v := int64(c.KVDim()), int64(c.VocabSize)
	ts := func(name string, dims ...int64) tensorSize { return tensorSize{name, dims} }
	var sizes []tensorSize
	if c.Version == 0 {
		sizes = []tensorSize{
			ts("token_embedding", v, d), ts("rms_att", l, d), ts("wq", l, d, d), ts("wk", l, kv, d),
			ts("wv", l, kv, d), ts("wo", l, d, d), ts("rms_ffn", l, d), ts("w1", l, h, d),
			ts("w2", l, d, h), ts("w3", l, h, d), ts("rms_final", d),
			// Two obsolete RoPE tables (freq_cis_real, freq_cis_imag): skipped.
			ts("freq_cis", 2, int64(c.SeqLen), int64(c.HeadSize()/2)),
		}
	} else {
		sizes = []tensorSize{
			ts("rms_att", l, d), ts("rms_ffn", l, d), ts("rms_final", d), ts("token_embedding", v, d),
			ts("wq", l, d, d), ts("wk", l, kv, d), ts("wv", l, kv, d), ts("wo", l, d, d),
			ts("w1", l, h, d), ts("w2", l, d, h), ts("w3", l, h, d),
		}
	}
	if !c.SharedClassifier {
		sizes = append(sizes, ts("classifier", v, d))
	}
	return sizes
}

type tensorSize struct {
	name string
	dims []int64
}

// fileSize is the number of bytes the header implies, computed in 64 bits
// with overflow checks (llama2.c overflowed 32-bit offsets on 13B models).
func (c Config) fileSize(headerSize int) (int64, error) {
	total := int64(headerSize)
	for _, t := range c.tensorSizes() {
		n, ok := mul64(append([]int64{4}, t.dims...)...)
		if !ok || total+n < total {
			return 0, fmt.Errorf("tensor %s of the header (%s) does not fit in 64 bits", t.name, c.describe())
		}
		total += n
	}
	return total, nil
}

// layout cuts body (the bytes after the header, already checked to be long
// enough) into the weight tensors.
func (c Config) layout(body []byte) weights {
	all := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(body))), len(body)/4)
	tensors := make(map[string][]float32)
	off := int64(0)
	for _, t := range c.tensorSizes() {
		n, _ := mul64(t.dims...)
		tensors[t.name] = all[off : off+n : off+n]
		off += n
	}
	d, h, kv := c.Dim, c.HiddenDim, c.KVDim()
	layer := func(name string, l, size int) []float32 {
		return tensors[name][l*size : (l+1)*size : (l+1)*size]
	}
	w := weights{
		tokenEmbedding: tensors["token_embedding"],
		layers:         make([]layerWeights, c.Layers),
		rmsFinal:       tensors["rms_final"],
		classifier:     tensors["classifier"],
	}
	if c.SharedClassifier {
		w.classifier = w.tokenEmbedding
	}
	for l := range w.layers {
		w.layers[l] = layerWeights{
			rmsAtt: layer("rms_att", l, d),
			wq:     layer("wq", l, d*d),
			wk:     layer("wk", l, kv*d),
			wv:     layer("wv", l, kv*d),
			wo:     layer("wo", l, d*d),
			rmsFFN: layer("rms_ffn", l, d),
			w1:     layer("w1", l, h*d),
			w2:     layer("w2", l, d*h),
			w3:     layer("w3", l, h*d),
		}
	}
	return w
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
