package gguf_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/llama2-go/llama2/gguf"
)

// Example builds a tiny GGUF file in memory and reads it back.
func Example() {
	b := gguf.NewBuilder()
	b.Add("general.architecture", "llama")
	b.Add("llama.context_length", uint32(128))
	// A 4x2 F32 matrix: rows of 4 elements, 2 rows, 32 bytes.
	b.AddTensor("output.weight", gguf.TypeF32, []int64{4, 2}, make([]byte, 32))
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		log.Fatal(err)
	}

	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	arch, _ := f.String("general.architecture")
	ctx, _ := f.Uint("llama.context_length")
	t, _ := f.Tensor("output.weight")
	fmt.Println(arch, ctx)
	fmt.Println(t.Name, t.Type, t.Dims, len(t.Data), "bytes")
	_, err = f.Uint("llama.block_count")
	fmt.Println(err)
	// Output:
	// llama 128
	// output.weight F32 [4 2] 32 bytes
	// gguf: key "llama.block_count": missing GGUF key
}
