package model

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
	"unsafe"

	"github.com/llama2-go/llama2/internal/kernels"
)

// DefaultGroupSize is the Q8_0 group size llama2.c's export.py picks for a
// model: 64, halved until it divides dim.
func DefaultGroupSize(c Config) int {
	gs := 64
	for c.Dim%gs != 0 {
		gs /= 2
	}
	return gs
}

// RowAlignedGroupSize is export.py's group size halved until it also divides
// hidden_dim, so that every group lies inside one row of every matrix: what
// llama2.c's runq.c assumes, and what the SIMD kernels need to take their
// fast path.
func RowAlignedGroupSize(c Config) int {
	gs := DefaultGroupSize(c)
	for c.HiddenDim%gs != 0 {
		gs /= 2
	}
	return gs
}

// checkGroupSize reports whether gs can quantize a model of shape c.
func checkGroupSize(c Config, gs int) error {
	if gs <= 0 {
		return fmt.Errorf("group size %d must be positive", gs)
	}
	q := c
	q.Version, q.GroupSize = 2, gs
	return q.validate()
}

// Quantize returns a Q8_0 version of an fp32 model, made in memory with
// export.py's algorithm: the int8 weights and their scales are allocated
// (a quarter of the fp32 size), the norms stay views into the mapping. The
// returned model shares the mapping: each of the two is closed on its own,
// and the file is unmapped when both are (and their sessions).
func (m *Model) Quantize(groupSize int) (*Model, error) {
	if m.Config.GroupSize > 0 {
		return nil, fmt.Errorf("checkpoint %s is already Q8_0", m.path)
	}
	if err := checkGroupSize(m.Config, groupSize); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", m.path, err)
	}
	if m.w.tokenEmbedding.f == nil && m.Config.Dim%groupSize != 0 {
		return nil, fmt.Errorf("checkpoint %s: group size %d must divide the rows (dim %d) of a model that is not fp32", m.path, groupSize, m.Config.Dim)
	}
	if m.closed.Load() {
		return nil, fmt.Errorf("checkpoint %s: %w", m.path, ErrClosed)
	}
	// q shares the mapping (its norms are views into it): each model holds
	// a reference, so closing one leaves the other's weights in place.
	shared := m.mapRefs()
	if err := shared.acquire(); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", m.path, err)
	}
	q := &Model{Config: m.Config, path: m.path, w: m.w, gguf: m.gguf, shared: shared}
	q.Config.GroupSize = groupSize
	q.w.act = actForm{gs: groupSize}
	qt := func(t tensor) tensor {
		n := t.rows * t.cols
		out := tensor{rows: t.rows, cols: t.cols, gs: groupSize,
			q: make([]int8, n), s: make([]float32, n/groupSize)}
		if t.f != nil {
			kernels.QuantizeQ8(out.q, out.s, t.f, groupSize, kernels.RoundHalfEven)
			return out
		}
		// Another type (GGUF): one row at a time, through float32. The
		// groups lie inside rows (checked above for dim; hidden_dim by
		// checkGroupSize's whole-tensor rule and the caller's choice).
		row := make([]float32, t.cols)
		for r := range t.rows {
			t.rowTo(row, r)
			o := r * t.cols
			kernels.QuantizeQ8(out.q[o:o+t.cols], out.s[o/groupSize:], row, groupSize, kernels.RoundHalfEven)
		}
		return out
	}
	q.w.tokenEmbedding = qt(m.w.tokenEmbedding)
	q.w.classifier = q.w.tokenEmbedding
	if !m.Config.SharedClassifier {
		q.w.classifier = qt(m.w.classifier)
	}
	q.w.layers = make([]layerWeights, len(m.w.layers))
	for l, lw := range m.w.layers {
		// The norms and biases stay views into the mapping.
		lw.wq, lw.wk, lw.wv, lw.wo = qt(lw.wq), qt(lw.wk), qt(lw.wv), qt(lw.wo)
		lw.w1, lw.w2, lw.w3 = qt(lw.w1), qt(lw.w2), qt(lw.w3)
		q.w.layers[l] = lw
	}
	return q, nil
}

// llama2cForm reports why m cannot be written as a llama2.c checkpoint,
// whose header has no room for them: biases, a RoPE other than run.c's
// (pairing, base, factors, scaling) or another norm epsilon. nil when it
// can.
func (m *Model) llama2cForm() error {
	c := m.Config
	var why []string
	if len(m.w.layers) > 0 {
		if lw := &m.w.layers[0]; lw.bq != nil || lw.bk != nil || lw.bv != nil || lw.bo != nil {
			why = append(why, "biases")
		}
	}
	rope := newRopeTable(Config{Dim: c.Dim, Heads: c.Heads}, ropeAdjacent, nil)
	if m.w.rope.style != ropeAdjacent {
		why = append(why, "RoPE on "+m.w.rope.style.String())
	}
	if !slices.Equal(rope.freq, m.w.rope.freq) {
		why = append(why, "RoPE frequencies other than run.c's (rope.freq_base, rope_freqs or rope.scaling)")
	}
	if c.normEps() != 1e-5 {
		why = append(why, fmt.Sprintf("a norm epsilon of %g", c.normEps()))
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("model %s cannot be written as a llama2.c checkpoint: it has %s", m.path, strings.Join(why, ", "))
}

// WriteQ8 writes an fp32 model as a llama2.c version 2 (Q8_0) checkpoint,
// byte for byte what export.py --version 2 writes: the 256-byte header
// (with the group size after the shared-classifier byte), the fp32 norms,
// then each weight tensor of each layer as int8 values followed by its
// float32 scales. progress, if not nil, is called after each tensor with
// the number of weights written so far and in all. A model whose weights
// are not all float32, or whose forward pass the format cannot describe
// (biases, another RoPE, another norm epsilon: a GGUF file of Llama 3 or
// Qwen2, say), is an error.
func WriteQ8(w io.Writer, m *Model, groupSize int, progress func(done, total int64)) error {
	c := m.Config
	if c.GroupSize > 0 {
		return fmt.Errorf("checkpoint %s is already Q8_0", m.path)
	}
	if err := checkGroupSize(c, groupSize); err != nil {
		return fmt.Errorf("checkpoint %s: %w", m.path, err)
	}
	if err := m.llama2cForm(); err != nil {
		return err
	}
	if e := &m.w.tokenEmbedding; e.f == nil || (len(m.w.layers) > 0 && m.w.layers[0].wq.f == nil) {
		return fmt.Errorf("model %s: only float32 weights can be written as a llama2.c checkpoint (%s)", m.path, m.Format())
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	le := binary.LittleEndian
	header := make([]byte, 0, versionedHeaderSize)
	header = le.AppendUint32(header, versionMagic)
	header = le.AppendUint32(header, 2)
	for _, d := range []int{c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KVHeads, c.VocabSize, c.SeqLen} {
		header = le.AppendUint32(header, uint32(int32(d)))
	}
	header = append(header, boolByte(c.SharedClassifier))
	header = le.AppendUint32(header, uint32(int32(groupSize)))
	header = header[:versionedHeaderSize] // zero padding

	if _, err := bw.Write(header); err != nil {
		return err
	}
	writeF32 := func(f []float32) error {
		_, err := bw.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f)))
		return err
	}
	var norms [][]float32
	for _, lw := range m.w.layers {
		norms = append(norms, lw.rmsAtt)
	}
	for _, lw := range m.w.layers {
		norms = append(norms, lw.rmsFFN)
	}
	norms = append(norms, m.w.rmsFinal)
	for _, n := range norms {
		if err := writeF32(n); err != nil {
			return err
		}
	}

	tensors := []tensor{m.w.tokenEmbedding}
	for _, pick := range []func(*layerWeights) tensor{
		func(l *layerWeights) tensor { return l.wq }, func(l *layerWeights) tensor { return l.wk },
		func(l *layerWeights) tensor { return l.wv }, func(l *layerWeights) tensor { return l.wo },
		func(l *layerWeights) tensor { return l.w1 }, func(l *layerWeights) tensor { return l.w2 },
		func(l *layerWeights) tensor { return l.w3 },
	} {
		for l := range m.w.layers {
			tensors = append(tensors, pick(&m.w.layers[l]))
		}
	}
	if !c.SharedClassifier {
		tensors = append(tensors, m.w.classifier)
	}
	var total, done int64
	for _, t := range tensors {
		total += int64(len(t.f))
	}
	var q []int8
	var s []float32
	for _, t := range tensors {
		q = slices.Grow(q[:0], len(t.f))[:len(t.f)]
		s = slices.Grow(s[:0], len(t.f)/groupSize)[:len(t.f)/groupSize]
		kernels.QuantizeQ8(q, s, t.f, groupSize, kernels.RoundHalfEven)
		if _, err := bw.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(q))), len(q))); err != nil {
			return err
		}
		if err := writeF32(s); err != nil {
			return err
		}
		done += int64(len(t.f))
		if progress != nil {
			progress(done, total)
		}
	}
	return bw.Flush()
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
