package gguf

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkTensors asserts the invariants Parse promises for every tensor: Data
// is a view of exactly Size bytes at DataOffset+Offset in data.
func checkTensors(t *testing.T, data []byte, f *File) {
	t.Helper()
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		rowBytes, ok := ti.Type.RowBytes(ti.Dims[0])
		require.True(t, ok, ti.Name)
		require.Equal(t, rowBytes*ti.Rows(), int64(len(ti.Data)), "tensor %s", ti.Name)
		require.Equal(t, ti.Size(), int64(len(ti.Data)), "tensor %s", ti.Name)
		start := f.DataOffset + ti.Offset
		require.Same(t, &data[start], &ti.Data[0], "tensor %s Data is not a view at DataOffset+Offset", ti.Name)
		got, ok := f.Tensor(ti.Name)
		require.True(t, ok)
		require.Same(t, ti, got)
	}
}

func TestFixtures(t *testing.T) {
	cases := []struct {
		file    string
		tensors int
		vocab   int
		context uint64
		types   []Type // types that must appear among the tensors
	}{
		{"randk-f32.gguf", 21, 512, 512, []Type{TypeF32}},
		{"randk-tied-f32.gguf", 20, 512, 512, []Type{TypeF32}},
		{"randk-F16.gguf", 21, 512, 512, []Type{TypeF16, TypeF32}},
		{"randk-BF16.gguf", 21, 512, 512, []Type{TypeBF16, TypeF32}},
		{"randk-Q8_0.gguf", 21, 512, 512, []Type{TypeQ8_0}},
		{"randk-Q4_0.gguf", 21, 512, 512, []Type{TypeQ4_0}},
		{"randk-Q4_K_M.gguf", 21, 512, 512, []Type{TypeQ4_K, TypeQ6_K}},
		{"randk-Q5_K_M.gguf", 21, 512, 512, []Type{TypeQ5_K, TypeQ6_K}},
		{"randk-Q6_K.gguf", 21, 512, 512, []Type{TypeQ6_K}},
		{"stories260K-f32.gguf", 47, 512, 512, []Type{TypeF32}},
		{"rand-gqa-32k-f32.gguf", 20, 32000, 128, []Type{TypeF32}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data, f := readFixture(t, c.file)
			require.Equal(t, uint32(3), f.Version)
			require.Equal(t, 32, f.Alignment)
			require.Zero(t, f.DataOffset%32)
			arch, err := f.String("general.architecture")
			require.NoError(t, err)
			require.Equal(t, "llama", arch)
			require.Len(t, f.Tensors, c.tensors)
			checkTensors(t, data, f)

			seen := map[Type]bool{}
			for _, ti := range f.Tensors {
				seen[ti.Type] = true
			}
			for _, typ := range c.types {
				require.True(t, seen[typ], "no %s tensor", typ)
			}

			ctx, err := f.Uint("llama.context_length")
			require.NoError(t, err)
			require.Equal(t, c.context, ctx)
			n, err := f.Int("llama.block_count")
			require.NoError(t, err)
			require.Equal(t, int64(countBlocks(f)), n)

			tokens, err := f.Strings("tokenizer.ggml.tokens")
			require.NoError(t, err)
			require.Len(t, tokens, c.vocab)
			require.Equal(t, []string{"<unk>", "<s>", "</s>"}, tokens[:3])
			scores, err := f.Float32s("tokenizer.ggml.scores")
			require.NoError(t, err)
			require.Len(t, scores, c.vocab)
			types, err := f.Int32s("tokenizer.ggml.token_type")
			require.NoError(t, err)
			require.Len(t, types, c.vocab)
			// SentencePiece token types: <unk> is 2 (unknown), <s> 3
			// (control), the byte tokens 6.
			require.Equal(t, []int32{2, 3, 3, 6}, types[:4])

			emb, ok := f.Tensor("token_embd.weight")
			require.True(t, ok)
			require.Equal(t, int64(c.vocab), emb.Dims[1])
		})
	}
}

// countBlocks counts the distinct blk.N prefixes among the tensor names.
func countBlocks(f *File) int {
	blocks := map[string]bool{}
	for _, ti := range f.Tensors {
		if rest, ok := strings.CutPrefix(ti.Name, "blk."); ok {
			blocks[rest[:strings.IndexByte(rest, '.')]] = true
		}
	}
	return len(blocks)
}

func TestFixtureRandkShapes(t *testing.T) {
	_, f := readFixture(t, "randk-f32.gguf")
	want := map[string][]int64{
		"token_embd.weight":        {256, 512},
		"output.weight":            {256, 512},
		"output_norm.weight":       {256},
		"blk.0.attn_q.weight":      {256, 256},
		"blk.0.attn_k.weight":      {256, 128},
		"blk.0.attn_v.weight":      {256, 128},
		"blk.1.ffn_down.weight":    {768, 256},
		"blk.1.ffn_gate.weight":    {256, 768},
		"blk.0.attn_norm.weight":   {256},
		"blk.1.attn_output.weight": {256, 256},
	}
	for name, dims := range want {
		ti, ok := f.Tensor(name)
		require.True(t, ok, name)
		require.Equal(t, dims, ti.Dims, name)
		require.Equal(t, TypeF32, ti.Type, name)
	}
	_, ok := f.Tensor("blk.2.attn_q.weight")
	require.False(t, ok)

	eps, err := f.Float("llama.attention.layer_norm_rms_epsilon")
	require.NoError(t, err)
	require.InDelta(t, 1e-5, eps, 1e-12)
	base, err := f.Float("llama.rope.freq_base")
	require.NoError(t, err)
	require.Equal(t, 10000.0, base)
	bos, err := f.Bool("tokenizer.ggml.add_bos_token")
	require.NoError(t, err)
	require.True(t, bos)
	tmpl, err := f.String("tokenizer.chat_template")
	require.NoError(t, err)
	require.Contains(t, tmpl, "<|assistant|>")

	// The tied file has no output.weight.
	_, tied := readFixture(t, "randk-tied-f32.gguf")
	_, ok = tied.Tensor("output.weight")
	require.False(t, ok)
}

func TestFixtureVocabOnly(t *testing.T) {
	data, f := readFixture(t, "ggml-vocab-llama-spm.gguf")
	require.Empty(t, f.Tensors)
	// llama.cpp leaves off the final padding of a file without tensors.
	require.Equal(t, int64(len(data)), f.DataOffset)
	model, err := f.String("tokenizer.ggml.model")
	require.NoError(t, err)
	require.Equal(t, "llama", model)
	tokens, err := f.Strings("tokenizer.ggml.tokens")
	require.NoError(t, err)
	require.Len(t, tokens, 32000)
	require.Equal(t, "▁the", tokens[278])
	scores, err := f.Float32s("tokenizer.ggml.scores")
	require.NoError(t, err)
	require.Len(t, scores, 32000)
	require.Less(t, scores[31999], scores[300], "scores fall with the merge rank")
}

func TestGetterErrors(t *testing.T) {
	b := NewBuilder()
	b.Add("s", "text")
	b.Add("neg", int32(-5))
	b.Add("big", uint64(1)<<63)
	b.Add("f", float32(1.5))
	b.Add("ints", []int64{1, 1 << 40})
	b.Add("strs", []string{"a"})
	data, err := b.Bytes()
	require.NoError(t, err)
	f, err := Parse(data)
	require.NoError(t, err)

	checks := []struct {
		err      error
		sentinel error
		key      string
	}{
		{errOf(f.String("nope")), ErrMissing, "nope"},
		{errOf(f.Uint("s")), ErrType, `"s" is string, want an integer`},
		{errOf(f.Uint("neg")), ErrType, "negative"},
		{errOf(f.Int("big")), ErrType, "does not fit an int64"},
		{errOf(f.Int("f")), ErrType, `"f" is float32`},
		{errOf(f.Bool("s")), ErrType, `"s"`},
		{errOf(f.Float("s")), ErrType, `"s"`},
		{errOf(f.String("f")), ErrType, `"f"`},
		{errOf(f.Strings("ints")), ErrType, "array of int64, want array of string"},
		{errOf(f.Float32s("strs")), ErrType, `"strs"`},
		{errOf(f.Int32s("ints")), ErrType, "element 1"},
		{errOf(f.Int32s("s")), ErrType, `"s"`},
		{errOf(f.Float32s("nope")), ErrMissing, `"nope"`},
	}
	for i, c := range checks {
		require.ErrorIs(t, c.err, c.sentinel, "check %d", i)
		require.Contains(t, c.err.Error(), c.key, "check %d", i)
	}

	n, err := f.Int("neg")
	require.NoError(t, err)
	require.Equal(t, int64(-5), n)
	u, err := f.Uint("big")
	require.NoError(t, err)
	require.Equal(t, uint64(1)<<63, u)
	x, err := f.Float("neg")
	require.NoError(t, err)
	require.Equal(t, -5.0, x)
}

func errOf[T any](_ T, err error) error { return err }

func TestTypeTraits(t *testing.T) {
	cases := []struct {
		typ          Type
		name         string
		block, bytes int
	}{
		{TypeF32, "F32", 1, 4}, {TypeF16, "F16", 1, 2}, {TypeBF16, "BF16", 1, 2},
		{TypeQ4_0, "Q4_0", 32, 18}, {TypeQ8_0, "Q8_0", 32, 34},
		{TypeQ4_K, "Q4_K", 256, 144}, {TypeQ5_K, "Q5_K", 256, 176}, {TypeQ6_K, "Q6_K", 256, 210},
		{TypeIQ4_NL, "IQ4_NL", 32, 18}, {TypeTQ1_0, "TQ1_0", 256, 54}, {TypeTQ2_0, "TQ2_0", 256, 66},
	}
	for _, c := range cases {
		require.Equal(t, c.name, c.typ.String())
		require.Equal(t, c.block, c.typ.BlockSize(), c.name)
		require.Equal(t, c.bytes, c.typ.BlockBytes(), c.name)
	}
	for _, unknown := range []Type{4, 5, 31, 36, 39, 99, 1 << 31} {
		require.False(t, unknown.Known())
		require.Zero(t, unknown.BlockSize())
		require.Zero(t, unknown.BlockBytes())
		_, ok := unknown.RowBytes(32)
		require.False(t, ok)
	}
	require.Equal(t, "type(99)", Type(99).String())

	n, ok := TypeQ4_K.RowBytes(512)
	require.True(t, ok)
	require.Equal(t, int64(288), n)
	_, ok = TypeQ4_K.RowBytes(100)
	require.False(t, ok)
	_, ok = TypeF32.RowBytes(1 << 62)
	require.False(t, ok, "4 * 2^62 overflows")
	_, ok = TypeF32.RowBytes(-1)
	require.False(t, ok)
}

func TestBuilderRoundTrip(t *testing.T) {
	values := []KV{}
	add := func(b *Builder, key string, v any) {
		b.Add(key, v)
		val, ok := valueOf(v)
		require.True(t, ok)
		values = append(values, KV{key, val})
	}
	b := NewBuilder()
	add(b, "u8", uint8(200))
	add(b, "i8", int8(-100))
	add(b, "u16", uint16(60000))
	add(b, "i16", int16(-30000))
	add(b, "u32", uint32(4000000000))
	add(b, "i32", int32(-2000000000))
	add(b, "u64", uint64(1)<<63+7)
	add(b, "i64", int64(-1)<<62)
	add(b, "f32", float32(3.25))
	add(b, "f64", 2.5e300)
	add(b, "bool", true)
	add(b, "str", "héllo")
	add(b, "empty", "")
	add(b, "a.u8", []uint8{1, 2, 255})
	add(b, "a.i8", []int8{-1, 2})
	add(b, "a.u16", []uint16{65535})
	add(b, "a.i16", []int16{-32768, 7})
	add(b, "a.u32", []uint32{1, 1 << 31})
	add(b, "a.i32", []int32{-1, 5, 1 << 30})
	add(b, "a.u64", []uint64{1 << 63})
	add(b, "a.i64", []int64{-9})
	add(b, "a.f32", []float32{0.5, -1})
	add(b, "a.f64", []float64{1e-300})
	add(b, "a.bool", []bool{true, false, true})
	add(b, "a.str", []string{"x", "", "yz"})
	add(b, "a.empty", []string{})

	f32 := make([]byte, 4*8*3)
	for i := range f32 {
		f32[i] = byte(i)
	}
	q40 := make([]byte, 18*2*5)
	q6k := make([]byte, 210*2)
	b.AddTensor("a", TypeF32, []int64{8, 3}, f32)
	b.AddTensor("b", TypeQ4_0, []int64{64, 5}, q40)
	b.AddTensor("c", TypeQ6_K, []int64{256, 1, 2}, q6k)
	b.AddTensor("d", TypeBF16, []int64{3}, []byte{1, 2, 3, 4, 5, 6})

	data, err := b.Bytes()
	require.NoError(t, err)
	f, err := Parse(data)
	require.NoError(t, err)
	require.Equal(t, uint32(3), f.Version)
	require.Len(t, f.KV, len(values))
	for i, kv := range values {
		require.Equal(t, kv.Key, f.KV[i].Key)
		got, ok := f.Lookup(kv.Key)
		require.True(t, ok)
		require.Equal(t, kv.Value.Type(), got.Type(), kv.Key)
		require.Equal(t, kv.Value.Interface(), got.Interface(), kv.Key)
		if got.Type() == Array {
			require.Equal(t, kv.Value.ElemType(), got.ElemType(), kv.Key)
			require.Equal(t, kv.Value.Len(), got.Len(), kv.Key)
		}
	}
	checkTensors(t, data, f)
	require.Len(t, f.Tensors, 4)
	wantTensors := []struct {
		name string
		typ  Type
		dims []int64
		data []byte
	}{{"a", TypeF32, []int64{8, 3}, f32}, {"b", TypeQ4_0, []int64{64, 5}, q40},
		{"c", TypeQ6_K, []int64{256, 1, 2}, q6k}, {"d", TypeBF16, []int64{3}, []byte{1, 2, 3, 4, 5, 6}}}
	for i, w := range wantTensors {
		ti := f.Tensors[i]
		require.Equal(t, w.name, ti.Name)
		require.Equal(t, w.typ, ti.Type)
		require.Equal(t, w.dims, ti.Dims)
		require.Equal(t, w.data, ti.Data)
		require.Zero(t, ti.Offset%32)
	}

	// Getters convert between integer widths and float widths.
	u, err := f.Uint("u8")
	require.NoError(t, err)
	require.Equal(t, uint64(200), u)
	i32s, err := f.Int32s("a.u8")
	require.NoError(t, err)
	require.Equal(t, []int32{1, 2, 255}, i32s)
	fs, err := f.Float32s("a.f64")
	require.NoError(t, err)
	require.Equal(t, []float32{float32(1e-300)}, fs)
	strs, err := f.Strings("a.str")
	require.NoError(t, err)
	require.Equal(t, []string{"x", "", "yz"}, strs)
	strs[0] = "changed"
	again, _ := f.Strings("a.str")
	require.Equal(t, "x", again[0], "Strings must return a copy")
}

func TestBuilderAlignmentAndReplace(t *testing.T) {
	b := NewBuilder()
	b.Add("general.alignment", uint32(64))
	b.Add("k", "old")
	b.Add("k", "new")
	b.AddTensor("x", TypeF32, []int64{3}, make([]byte, 12))
	b.AddTensor("y", TypeF32, []int64{5}, make([]byte, 20))
	data, err := b.Bytes()
	require.NoError(t, err)
	f, err := Parse(data)
	require.NoError(t, err)
	require.Equal(t, 64, f.Alignment)
	require.Zero(t, f.DataOffset%64)
	require.Equal(t, int64(64), f.Tensors[1].Offset)
	require.Len(t, f.KV, 2)
	s, _ := f.String("k")
	require.Equal(t, "new", s)

	b.AddTensor("z", TypeF32, []int64{5}, make([]byte, 19))
	_, err = b.Bytes()
	require.ErrorContains(t, err, `tensor "z"`)

	require.Panics(t, func() { b.Add("bad", struct{}{}) })
	require.Panics(t, func() { b.Add("bad", []int{1}) })
}

func TestValueString(t *testing.T) {
	v, _ := valueOf([]string{"a", "b", "c", "d", "e"})
	require.Equal(t, `[5]string{"a", "b", "c", "d", ...}`, v.String())
	v, _ = valueOf(int16(-3))
	require.Equal(t, "-3", v.String())
	require.Equal(t, "valuetype(13)", ValueType(13).String())
	require.True(t, slices.Equal([]string{"uint8", "array"}, []string{Uint8.String(), Array.String()}))
	require.False(t, errors.Is(ErrFormat, ErrType))
}

// TestReadMetadata reads files' metadata from a prefix, growing it when
// the metadata does not fit (a tiny first prefix here), and compares it
// with Parse's reading of the whole file.
func TestReadMetadata(t *testing.T) {
	defer func(n int64) { metadataPrefix = n }(metadataPrefix)
	for _, prefix := range []int64{8 << 20, 1000, 1} {
		metadataPrefix = prefix
		for _, name := range []string{"gguf/randk-Q4_K_M.gguf", "gguf/ggml-vocab-llama-spm.gguf"} {
			path := fixture(t, name)
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			want, err := Parse(data)
			require.NoError(t, err)
			got, err := ReadMetadata(path)
			require.NoError(t, err, name)
			require.Equal(t, want.KV, got.KV, name)
			require.Equal(t, want.DataOffset, got.DataOffset, name)
			require.Len(t, got.Tensors, len(want.Tensors))
			for i := range want.Tensors {
				w := want.Tensors[i]
				w.Data = nil
				require.Equal(t, w, got.Tensors[i], name)
			}
		}
	}
	// A file cut inside its metadata is an error once the whole file is read.
	data, err := os.ReadFile(fixture(t, "gguf/ggml-vocab-llama-spm.gguf"))
	require.NoError(t, err)
	cut := filepath.Join(t.TempDir(), "cut.gguf")
	require.NoError(t, os.WriteFile(cut, data[:len(data)/2], 0o644))
	metadataPrefix = 1000
	_, err = ReadMetadata(cut)
	require.ErrorIs(t, err, ErrFormat)
	_, err = ReadMetadata(filepath.Join(t.TempDir(), "missing.gguf"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
