package gguf

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// smallFile builds a valid file exercising every part of the format: scalars,
// a string, numeric and string arrays, and tensors of two types.
func smallFile(tb testing.TB) []byte {
	tb.Helper()
	b := NewBuilder()
	b.Add("general.architecture", "llama")
	b.Add("general.alignment", uint32(16))
	b.Add("llama.context_length", uint32(64))
	b.Add("f", float32(0.5))
	b.Add("tokens", []string{"a", "bc", ""})
	b.Add("scores", []float32{1, 2, 3})
	b.AddTensor("w", TypeF32, []int64{2, 3}, make([]byte, 24))
	b.AddTensor("q", TypeQ8_0, []int64{32}, make([]byte, 34))
	data, err := b.Bytes()
	require.NoError(tb, err)
	return data
}

// header starts a file by hand: magic, version and the two counts.
func header(version uint32, nTensors, nKV uint64) *encoder {
	var e encoder
	e.WriteString(magic)
	e.u32(version)
	e.u64(nTensors)
	e.u64(nKV)
	return &e
}

// build returns b's bytes, failing the test on an error; b may be unchecked.
func build(tb testing.TB, b *Builder) []byte {
	tb.Helper()
	data, err := b.Bytes()
	require.NoError(tb, err)
	return data
}

// tensorFile builds a file whose single tensor has the given type and dims
// and length bytes of data, without WriteTo's size checks.
func tensorFile(tb testing.TB, typ Type, dims []int64, length int) []byte {
	b := NewBuilder()
	b.unchecked = true
	b.AddTensor("bad.weight", typ, dims, make([]byte, length))
	return build(tb, b)
}

func TestTruncations(t *testing.T) {
	data := smallFile(t)
	f, err := Parse(data)
	require.NoError(t, err)
	require.Len(t, f.Tensors, 2)
	for i := range len(data) {
		f, err := Parse(data[:i])
		require.Nil(t, f, "prefix of %d bytes", i)
		want := ErrFormat
		if i == 0 {
			want = ErrNotGGUF // nothing at all is not a truncated GGUF
		}
		require.ErrorIs(t, err, want, "prefix of %d bytes", i)
	}
}

func TestMalformed(t *testing.T) {
	withKV := func(key string, v Value) []byte {
		b := NewBuilder()
		b.addRaw(key, v)
		return build(t, b)
	}
	alignment := func(v any) []byte {
		b := NewBuilder()
		b.unchecked = true
		b.Add("general.alignment", v)
		return build(t, b)
	}
	overflow := func() []byte { // product of dims overflows int64
		return tensorFile(t, TypeF32, []int64{1 << 32, 1 << 32}, 0)
	}
	withOffsets := func(offsets ...int64) []byte {
		b := NewBuilder()
		for i, off := range offsets {
			b.AddTensor(fmt.Sprint("t", i), TypeF32, []int64{8}, make([]byte, 32))
			b.tensors[i].offset, b.tensors[i].hasOffset = off, true
		}
		return build(t, b)
	}
	big := func() *encoder { // kv_count 1, then a key with a huge length
		e := header(3, 0, 1)
		e.u64(1 << 62)
		e.WriteString("key and some bytes")
		return e
	}
	bigArray := func() *encoder {
		e := header(3, 0, 1)
		e.str("tokenizer.ggml.tokens")
		e.u32(uint32(Array))
		e.u32(uint32(String))
		e.u64(1 << 40)
		e.str("a")
		return e
	}
	hugeStringElem := func() *encoder {
		e := header(3, 0, 1)
		e.str("toks")
		e.u32(uint32(Array))
		e.u32(uint32(String))
		e.u64(2)
		e.str("a")
		e.u64(1 << 50)
		return e
	}
	dupTensor := func() []byte {
		b := NewBuilder()
		b.AddTensor("same", TypeF32, []int64{1}, make([]byte, 4))
		b.AddTensor("same", TypeF32, []int64{1}, make([]byte, 4))
		return build(t, b)
	}
	dupKey := func() []byte {
		b := NewBuilder()
		b.Add("general.name", "a")
		b.Add("x", uint8(1))
		b.addRaw("general.name", Value{typ: String, str: "b"})
		return build(t, b)
	}
	bigDim := func() []byte {
		e := header(3, 1, 0)
		e.str("t")
		e.u32(1)
		e.u64(1 << 63)
		e.u32(uint32(TypeF32))
		e.u64(0)
		e.Write(make([]byte, 64))
		return e.Bytes()
	}
	bigEndian := func() []byte {
		data := smallFile(t)
		binary.BigEndian.PutUint32(data[4:], 3)
		return data
	}

	cases := []struct {
		name     string
		data     []byte
		sentinel error
		msg      string // must appear in the error's message
	}{
		{"bad magic", []byte("GGML\x03\x00\x00\x00"), ErrNotGGUF, `bad magic "GGML"`},
		{"empty", nil, ErrNotGGUF, "empty data"},
		{"short magic", []byte("GG"), ErrFormat, "inside the magic"},
		{"v1", header(1, 0, 0).Bytes(), ErrVersion, "version 1"},
		{"v4", header(4, 0, 0).Bytes(), ErrVersion, "version 4"},
		{"v0", header(0, 0, 0).Bytes(), ErrVersion, "version 0"},
		{"big-endian", bigEndian(), ErrVersion, "big-endian GGUF is not supported"},
		{"huge kv_count", header(3, 0, 1<<60).Bytes(), ErrFormat, "kv_count 1152921504606846976"},
		{"huge tensor_count", header(3, 1<<60, 0).Bytes(), ErrFormat, "tensor_count 1152921504606846976"},
		{"counts together", append(header(3, 1, 2).Bytes(), make([]byte, 40)...), ErrFormat, "tensor_count 1 and kv_count 2"},
		{"huge key length", big().Bytes(), ErrFormat, "key 0: string length 4611686018427387904 exceeds"},
		{"huge array count", bigArray().Bytes(), ErrFormat, `key "tokenizer.ggml.tokens": array of 1099511627776 string`},
		{"huge string element", hugeStringElem().Bytes(), ErrFormat, `key "toks": element 1 of 2: string length`},
		{"bad value type", withKV("k.bad", Value{typ: 13}), ErrFormat, `key "k.bad": unknown value type 13`},
		{"bad element type", withKV("k.arr", Value{typ: Array, elem: 42}), ErrFormat, `key "k.arr": unknown array element type 42`},
		{"nested array", withKV("k.nest", Value{typ: Array, elem: Array}), ErrFormat, `key "k.nest": nested arrays`},
		{"empty key", withKV("", Value{typ: Uint8}), ErrFormat, "key 0 is empty"},
		{"bad utf-8 key", withKV("a\xffb", Value{typ: Uint8}), ErrFormat, "not valid UTF-8"},
		{"duplicate key", dupKey(), ErrFormat, `duplicate key "general.name" (entries 0 and 2)`},
		{"duplicate tensor", dupTensor(), ErrFormat, `duplicate tensor name "same"`},
		{"alignment 0", alignment(uint32(0)), ErrFormat, `"general.alignment": alignment 0 is not a nonzero power of two`},
		{"alignment 3", alignment(uint32(3)), ErrFormat, "alignment 3 is not"},
		{"alignment huge", alignment(uint64(1) << 40), ErrFormat, "exceeds"},
		{"alignment signed", alignment(int32(32)), ErrFormat, `"general.alignment" has type int32`},
		{"alignment string", alignment("32"), ErrFormat, `"general.alignment" has type string`},
		{"bad tensor type", tensorFile(t, 99, []int64{4}, 16), ErrFormat, `tensor "bad.weight": unknown tensor type 99`},
		{"removed tensor type", tensorFile(t, 4, []int64{32}, 20), ErrFormat, "unknown tensor type 4"},
		{"n_dims 0", tensorFile(t, TypeF32, nil, 4), ErrFormat, `tensor "bad.weight": n_dims is 0`},
		{"n_dims 5", tensorFile(t, TypeF32, []int64{1, 1, 1, 1, 1}, 4), ErrFormat, "n_dims is 5, want 1 to 4"},
		{"zero dim", tensorFile(t, TypeF32, []int64{4, 0}, 0), ErrFormat, `tensor "bad.weight": dimension 1 is 0`},
		{"dim above int64", bigDim(), ErrFormat, `tensor "t": dimension 0 is 9223372036854775808`},
		{"dims overflow", overflow(), ErrFormat, "more than 2^63-1 elements"},
		{"bytes overflow", tensorFile(t, TypeF32, []int64{1 << 62}, 0), ErrFormat, "overflow an int64 byte size"},
		{"row not multiple of block", tensorFile(t, TypeQ4_0, []int64{16, 2}, 18), ErrFormat,
			`tensor "bad.weight": row length 16 is not a multiple of the Q4_0 block size 32`},
		{"rows ok but row not", tensorFile(t, TypeQ4_K, []int64{128, 2}, 144), ErrFormat, "Q4_K block size 256"},
		{"misaligned offset", withOffsets(0, 40), ErrFormat, `tensor "t1": offset 40 is not a multiple of the alignment 32`},
		{"offset past end", withOffsets(0, 1<<20), ErrFormat, `tensor "t1": data [1048576, +32) lies past the end`},
		{"offset near max", withOffsets(0, 1<<62), ErrFormat, `tensor "t1": data`},
		{"data truncated", tensorFile(t, TypeF32, []int64{8}, 16), ErrFormat, `tensor "bad.weight": data [0, +32) lies past the end of the 16-byte`},
		{"overlap", withOffsets(0, 0), ErrFormat, `tensors "t0" [0, 32) and "t1" [0, 32) overlap`},
		{"overlap out of order", withOffsets(32, 0, 32), ErrFormat, "overlap"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.data)
			require.Nil(t, f)
			require.ErrorIs(t, err, c.sentinel)
			require.ErrorContains(t, err, c.msg)
		})
	}
}

// TestOutOfOrderTensors checks that tensor infos need not be in offset order,
// as long as the data do not overlap.
func TestOutOfOrderTensors(t *testing.T) {
	b := NewBuilder()
	b.AddTensor("second", TypeF32, []int64{8}, make([]byte, 32))
	b.AddTensor("first", TypeF32, []int64{8}, make([]byte, 32))
	b.tensors[0].offset, b.tensors[0].hasOffset = 32, true
	b.tensors[1].offset, b.tensors[1].hasOffset = 0, true
	data := build(t, b)
	f, err := Parse(data)
	require.NoError(t, err)
	checkTensors(t, data, f)
	require.Equal(t, int64(32), f.Tensors[0].Offset)
}

// TestVocabOnlyPadding checks the llama.cpp quirk the vocabulary-only
// fixture shows: with no tensors, a missing final padding is accepted, but
// with tensors a data section past the end is an error.
func TestVocabOnlyPadding(t *testing.T) {
	b := NewBuilder()
	b.Add("tokenizer.ggml.model", "llama")
	data := build(t, b)
	end := len(data)
	for end%32 != 0 {
		end++
	}
	require.Equal(t, end, len(data), "Builder pads the header")
	unpadded := data[:24+8+len("tokenizer.ggml.model")+4+8+len("llama")]
	f, err := Parse(unpadded)
	require.NoError(t, err)
	require.Equal(t, int64(len(unpadded)), f.DataOffset)
}

// TestLyingCountsAllocateLittle checks that counts which pass the size bound
// but lie do not reserve memory in proportion to the count: a megabyte of
// zeros claiming 74898 KVs fails at the first key having allocated little.
func TestLyingCountsAllocateLittle(t *testing.T) {
	const size = 1 << 20
	for _, counts := range [][2]uint64{{0, size / minKVSize}, {size / minTensorInfoSize, 0}} {
		e := header(3, counts[0], counts[1])
		e.Write(make([]byte, size))
		data := e.Bytes()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Parse(data)
		runtime.ReadMemStats(&after)
		require.ErrorIs(t, err, ErrFormat)
		require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(size/4), "counts %v", counts)
	}
}

// TestVersion2 checks that v2 files, laid out like v3, are read.
func TestVersion2(t *testing.T) {
	b := NewBuilder()
	b.version = 2
	b.Add("general.architecture", "llama")
	b.AddTensor("w", TypeQ8_0, []int64{32, 2}, make([]byte, 68))
	data := build(t, b)
	f, err := Parse(data)
	require.NoError(t, err)
	require.Equal(t, uint32(2), f.Version)
	checkTensors(t, data, f)
}
