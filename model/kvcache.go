package model

import (
	"fmt"
	"strings"

	"github.com/llama2-go/llama2/internal/kernels"
)

// KVType is the element type of a session's key or value cache
// ([SessionOptions.KeyCache], [SessionOptions.ValueCache]). At long
// contexts attention reads the cache as much as the weights: a
// TinyLlama-shaped model at 4096 positions reads 184 MB of float32 keys and
// values a token against 668 MB of Q4_K_M weights. KVF16 halves that and
// KVQ8_0 takes it to 17/64, for logits a little further from float32's
// (see the README's depth section for the tolerances measured).
type KVType uint8

const (
	// KVF32 keeps keys and values as float32 (the default).
	KVF32 KVType = iota
	// KVF16 keeps them as float16 (IEEE binary16, rounded to nearest).
	KVF16
	// KVQ8_0 keeps them in GGUF's Q8_0 blocks: 32 int8 values and a
	// float16 scale, per head. It needs a head size that is a multiple
	// of 32.
	KVQ8_0
)

var kvTypeNames = [...]string{KVF32: "f32", KVF16: "f16", KVQ8_0: "q8_0"}

// String is the type's name as the flags take it: f32, f16 or q8_0.
func (t KVType) String() string {
	if int(t) < len(kvTypeNames) {
		return kvTypeNames[t]
	}
	return fmt.Sprintf("KVType(%d)", t)
}

// Set parses a name (f32, f16 or q8_0, any case), as a flag.Value.
func (t *KVType) Set(s string) error {
	for i, name := range kvTypeNames {
		if strings.EqualFold(s, name) {
			*t = KVType(i)
			return nil
		}
	}
	return fmt.Errorf("cache type %q: want f32, f16 or q8_0", s)
}

// rowBytes is the bytes of one position's row of kvDim values.
func (t KVType) rowBytes(kvDim int) int {
	switch t {
	case KVF16:
		return 2 * kvDim
	case KVQ8_0:
		return kvDim / kernels.QBlock * kernels.Q8_0Bytes
	}
	return 4 * kvDim
}

// check reports whether a model of config c can keep its cache in t.
func (t KVType) check(c *Config) error {
	switch {
	case int(t) >= len(kvTypeNames):
		return fmt.Errorf("cache type %d is not one of f32, f16, q8_0", t)
	case t == KVQ8_0 && c.HeadSize()%kernels.QBlock != 0:
		return fmt.Errorf("cache type q8_0 needs a head size that is a multiple of %d, not %d", kernels.QBlock, c.HeadSize())
	}
	return nil
}

// KVCacheBytes is the memory a session's KV cache takes with keys in k and
// values in v, for the model's whole context.
func (m *Model) KVCacheBytes(k, v KVType) int64 {
	c := &m.Config
	return int64(c.Layers) * int64(c.SeqLen) * int64(k.rowBytes(c.KVDim())+v.rowBytes(c.KVDim()))
}

// KVBytesRead is what attention reads of the cache for a token at position
// pos (its keys and values at positions 0..pos-1 and its own).
func (m *Model) KVBytesRead(pos int, k, v KVType) int64 {
	c := &m.Config
	return int64(c.Layers) * int64(pos+1) * int64(k.rowBytes(c.KVDim())+v.rowBytes(c.KVDim()))
}

// kvCache is one of a session's two caches: (layer, position, kv_dim)
// values of its type. A float32 cache is written in place by the
// products; the others take a position's row once it is complete (put).
type kvCache struct {
	typ      KVType
	kvDim    int
	seqLen   int
	rowBytes int
	f        []float32 // KVF32
	h        []uint16  // KVF16
	q        []byte    // KVQ8_0
}

func newKVCache(typ KVType, c *Config) kvCache {
	kc := kvCache{typ: typ, kvDim: c.KVDim(), seqLen: c.SeqLen, rowBytes: typ.rowBytes(c.KVDim())}
	rows := c.Layers * c.SeqLen
	switch typ {
	case KVF16:
		kc.h = make([]uint16, rows*kc.kvDim)
	case KVQ8_0:
		kc.q = make([]byte, rows*kc.rowBytes)
	default:
		kc.f = make([]float32, rows*kc.kvDim)
	}
	return kc
}

// row returns the float32 rows of layer l at positions [pos, pos+n): the
// cache itself for a float32 cache, else scratch (n rows), to be handed to
// put once written.
func (kc *kvCache) row(l, pos, n int, scratch []float32) []float32 {
	if kc.f != nil {
		off := (l*kc.seqLen + pos) * kc.kvDim
		return kc.f[off : off+n*kc.kvDim]
	}
	return scratch[:n*kc.kvDim]
}

// put stores rows (from row) of layer l at positions [pos, pos+n) in the
// cache's type; nothing for a float32 cache, whose rows were the cache.
func (kc *kvCache) put(l, pos int, rows []float32) {
	n := len(rows) / kc.kvDim
	first := l*kc.seqLen + pos
	switch kc.typ {
	case KVF16:
		kernels.ConvertRowF16(kc.h[first*kc.kvDim:(first+n)*kc.kvDim], rows)
	case KVQ8_0:
		for i := range n {
			kernels.QuantizeRowQ8_0(kc.q[(first+i)*kc.rowBytes:], rows[i*kc.kvDim:(i+1)*kc.kvDim])
		}
	}
}

// head returns head g's rows (hs values each, from value g*hs of a row) at
// positions [p0, p1) of layer l as float32, and the distance between
// consecutive rows: the cache itself (kv_dim apart) for a float32 cache,
// else widened into buf (hs apart). Every path widens the same values the
// same way, so the attention's sums do not depend on which path read them.
func (kc *kvCache) head(l, g, hs, p0, p1 int, buf []float32) ([]float32, int) {
	first := l*kc.seqLen + p0
	n := p1 - p0
	switch kc.typ {
	case KVF16:
		kernels.DequantRowsF16(buf, kc.h[first*kc.kvDim+g*hs:], n, hs, kc.kvDim)
		return buf[:n*hs], hs
	case KVQ8_0:
		off := first*kc.rowBytes + g*hs/kernels.QBlock*kernels.Q8_0Bytes
		kernels.DequantRowsQ8_0(buf, kc.q[off:], n, hs, kc.rowBytes)
		return buf[:n*hs], hs
	}
	off := first*kc.kvDim + g*hs
	return kc.f[off : off+(n-1)*kc.kvDim+hs], kc.kvDim
}
