package model

import (
	"math"
	"sync"

	"github.com/llama2-go/llama2/internal/kernels"
)

// Attention over the KV cache, grouped and tiled. The query heads that
// share a key/value head (grouped-query attention: TinyLlama's 32 query
// heads read 4 KV heads) take each block of positions together: a block
// of the head's keys is read from memory (and widened to float32 for a
// float16 or Q8_0 cache) once, then every query head of the group takes
// its scores from it while it is in L1; the values likewise after the
// softmax. Reading each head's cache once per query head instead cost 8x
// the cache's bytes per token, from L3 at best; at 4096 positions a
// TinyLlama-shaped layer's float32 cache is 8 MiB.
//
// Every path (a token alone, a prompt's batch, a decode step) computes a
// score as one DotStrided over a block's rows and adds the values in order
// of position (AxpyStrided), over blocks that start at multiples of
// attnBlock positions, so a position's attention is the same float
// operations on the same values whichever path computes it. (DotStrided's
// value for a row depends on its place among the kernel's groups of 8, 4
// and 1 rows counted from the call's first row: blocks that start at
// multiples of 8 keep every row in the same place.)

// attnBlockBytes bounds the bytes of one block of a head's keys or values
// as float32.
const attnBlockBytes = 16 << 10

// attnBlock is the positions of a block for heads of hs values: a multiple
// of 8.
func attnBlock(hs int) int { return max(16, attnBlockBytes/(4*hs)&^7) }

// attnGrain is the heads a worker takes at a time: a KV group's query
// heads, so that each worker reads its groups' keys and values once,
// unless there are fewer KV heads than threads.
func attnGrain(c *Config, threads int) int {
	if c.KVHeads >= threads {
		return c.KVMul()
	}
	return 1
}

// attnScratch holds a worker's widened block of keys or values (for the
// caches that are not float32).
var attnScratch = sync.Pool{New: func() any { return new([]float32) }}

// attention computes heads [lo, hi) of the current position.
func (s *Session) attention(lo, hi int) {
	s.attendHeads(s.q, s.xb, s.pos, lo, hi)
}

// attendHeads computes heads [lo, hi) of grouped-query attention of query q
// at position pos over the cached positions 0..pos of the current layer,
// writing each head's output into out: the heads of one KV group together
// (see above).
func (s *Session) attendHeads(q, out []float32, pos, lo, hi int) {
	c := &s.cfg
	hs, kvMul := c.HeadSize(), c.KVMul()
	scale := float32(math.Sqrt(float64(hs)))
	n := pos + 1
	block := attnBlock(hs)
	buf := s.attnBuf(block * hs)
	defer s.putAttnBuf(buf)
	for h0 := lo; h0 < hi; {
		g := h0 / kvMul
		h1 := min(hi, (g+1)*kvMul) // the group's heads in [lo, hi)
		for p0 := 0; p0 < n; p0 += block {
			p1 := min(p0+block, n)
			k, stride := s.keys.head(s.layer, g, hs, p0, p1, *buf)
			for h := h0; h < h1; h++ {
				kernels.DotStrided(s.att.row(h, n)[p0:p1], q[h*hs:(h+1)*hs], k, stride)
			}
		}
		for h := h0; h < h1; h++ {
			att := s.att.row(h, n)
			kernels.DivScalar(att, scale)
			kernels.Softmax(att)
			clear(out[h*hs : (h+1)*hs])
		}
		for p0 := 0; p0 < n; p0 += block {
			p1 := min(p0+block, n)
			v, stride := s.values.head(s.layer, g, hs, p0, p1, *buf)
			for h := h0; h < h1; h++ {
				kernels.AxpyStrided(out[h*hs:(h+1)*hs], s.att.row(h, n)[p0:p1], v, stride)
			}
		}
		h0 = h1
	}
}

// attnBuf returns scratch of n floats for widening a block of the cache,
// nil for float32 caches, which attention reads in place.
func (s *Session) attnBuf(n int) *[]float32 {
	if s.keys.typ == KVF32 && s.values.typ == KVF32 {
		return &noAttnBuf
	}
	buf := attnScratch.Get().(*[]float32)
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	*buf = (*buf)[:n]
	return buf
}

func (s *Session) putAttnBuf(buf *[]float32) {
	if buf != &noAttnBuf {
		attnScratch.Put(buf)
	}
}

// noAttnBuf stands for no scratch (float32 caches); never written.
var noAttnBuf []float32

// attentionBatch computes heads [lo, hi) for every token of the batch: each
// block of positions of a KV group's keys, then values, is read once for
// all the group's heads in [lo, hi) and all the tokens that attend to it
// (token b attends to positions 0..pos0+b). The scores and sums are those
// of attendHeads, bit for bit.
func (s *Session) attentionBatch(lo, hi int) {
	b, c := s.batch, &s.cfg
	dim, hs, kvMul := c.Dim, c.HeadSize(), c.KVMul()
	scale := float32(math.Sqrt(float64(hs)))
	block := attnBlock(hs)
	end := b.pos0 + b.n // positions [0, end) are in the cache
	att := func(h, i, p0, p1 int) []float32 { return b.att.row(h*b.size+i, p1)[p0:] }
	buf := s.attnBuf(block * hs)
	defer s.putAttnBuf(buf)
	for h0 := lo; h0 < hi; {
		g := h0 / kvMul
		h1 := min(hi, (g+1)*kvMul)
		for p0 := 0; p0 < end; p0 += block {
			k, stride := s.keys.head(s.layer, g, hs, p0, min(p0+block, end), *buf)
			for h := h0; h < h1; h++ {
				for i := max(0, p0-b.pos0); i < b.n; i++ {
					p1 := min(p0+block, b.pos0+i+1)
					q := b.q[i*dim+h*hs : i*dim+(h+1)*hs]
					kernels.DotStrided(att(h, i, p0, p1), q, k, stride)
				}
			}
		}
		for h := h0; h < h1; h++ {
			for i := range b.n {
				a := att(h, i, 0, b.pos0+i+1)
				kernels.DivScalar(a, scale)
				kernels.Softmax(a)
				clear(b.xb[i*dim+h*hs : i*dim+(h+1)*hs])
			}
		}
		for p0 := 0; p0 < end; p0 += block {
			v, stride := s.values.head(s.layer, g, hs, p0, min(p0+block, end), *buf)
			for h := h0; h < h1; h++ {
				for i := max(0, p0-b.pos0); i < b.n; i++ {
					p1 := min(p0+block, b.pos0+i+1)
					out := b.xb[i*dim+h*hs : i*dim+(h+1)*hs]
					kernels.AxpyStrided(out, att(h, i, p0, p1), v, stride)
				}
			}
		}
		h0 = h1
	}
}
