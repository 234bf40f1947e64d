package model_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
)

// A session whose cached keys and values are float16: half the memory of
// float32 (and half of what attention reads at long contexts), for the
// same greedy story here (Example's).
func ExampleKVType() {
	m, err := model.Open("../testdata/stories260K.bin")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load("../testdata/tok512.bin", m.Config.VocabSize)
	if err != nil {
		log.Fatal(err)
	}
	var kv model.KVType
	if err := kv.Set("f16"); err != nil { // as the -ctk and -ctv flags do
		log.Fatal(err)
	}
	fmt.Printf("cache: %d bytes as f32, %d as %v\n",
		m.KVCacheBytes(model.KVF32, model.KVF32), m.KVCacheBytes(kv, kv), kv)

	session, err := m.NewSession(model.SessionOptions{KeyCache: kv, ValueCache: kv})
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	sampler := sample.New(m.Config.VocabSize, 0, 0.9, 1) // greedy
	var text strings.Builder
	decoder := tok.NewTextDecoder()
	_, err = session.Generate(context.Background(), tok.Encode("Once upon a time", true, false), sampler, 31, func(prev, next int) bool {
		text.Write(decoder.Append(nil, prev, next))
		return true
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(text.String())
	// Output:
	// cache: 655360 bytes as f32, 327680 as f16
	// Once upon a time, there was a little girl named Lily. She loved to play outside in the park.
}
