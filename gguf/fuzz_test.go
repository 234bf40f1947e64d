package gguf

import (
	"errors"
	"testing"
)

// fuzzSeeds are small valid files covering the format's parts; the fuzzer
// mutates them. testdata/fuzz/FuzzParse holds a few more in go-fuzz form.
func fuzzSeeds(tb testing.TB) [][]byte {
	seeds := [][]byte{smallFile(tb)}

	b := NewBuilder()
	b.Add("tokenizer.ggml.model", "llama")
	b.Add("tokenizer.ggml.tokens", []string{"<unk>", "<s>", "</s>", "▁a"})
	b.Add("tokenizer.ggml.token_type", []int32{2, 3, 3, 1})
	b.Add("tokenizer.ggml.add_bos_token", true)
	seeds = append(seeds, build(tb, b))

	b = NewBuilder()
	b.Add("general.alignment", uint64(8))
	b.Add("i64", []int64{-1, 2})
	b.Add("f64", 1.5)
	b.AddTensor("k", TypeQ4_K, []int64{256}, make([]byte, 144))
	b.AddTensor("h", TypeF16, []int64{1, 2, 1, 2}, make([]byte, 8))
	seeds = append(seeds, build(tb, b))
	return seeds
}

// FuzzParse checks that Parse never panics, that every error wraps one of
// the package's sentinels, and that any File it returns keeps its promises:
// tensor Data inside the input at DataOffset+Offset, of Size bytes, and
// metadata readable without panics.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if file != nil {
				t.Fatal("Parse returned a File with an error")
			}
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrNotGGUF) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if file.DataOffset < 0 || file.DataOffset > int64(len(data)) {
			t.Fatalf("DataOffset %d outside the %d-byte input", file.DataOffset, len(data))
		}
		for i := range file.Tensors {
			ti := &file.Tensors[i]
			start := file.DataOffset + ti.Offset
			end := start + int64(len(ti.Data))
			if ti.Offset < 0 || end > int64(len(data)) || int64(len(ti.Data)) != ti.Size() {
				t.Fatalf("tensor %q: Data [%d, %d) of size %d, input %d bytes", ti.Name, start, end, ti.Size(), len(data))
			}
			if len(ti.Data) > 0 && &ti.Data[0] != &data[start] {
				t.Fatalf("tensor %q: Data is not a view of the input", ti.Name)
			}
			if got, ok := file.Tensor(ti.Name); !ok || got != ti {
				t.Fatalf("Tensor(%q) does not find it", ti.Name)
			}
		}
		for _, kv := range file.KV {
			v, ok := file.Lookup(kv.Key)
			if !ok || v.Type() != kv.Value.Type() {
				t.Fatalf("Lookup(%q) does not find it", kv.Key)
			}
			_ = v.String()
			_ = v.Interface()
			// The getters must not panic on any type; errors are fine.
			_, _ = file.Uint(kv.Key)
			_, _ = file.Int(kv.Key)
			_, _ = file.Float(kv.Key)
			_, _ = file.Float32s(kv.Key)
			_, _ = file.Int32s(kv.Key)
			_, _ = file.Strings(kv.Key)
		}
	})
}
