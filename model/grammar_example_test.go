package model_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/llama2-go/llama2/grammar"
	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/tokenizer"
)

// Fill a Go struct: the schema's grammar constrains the sampling, so the
// text always decodes, even from a 260K-parameter model that has never
// seen JSON.
func ExampleGenerateOptions_grammar() {
	m, err := model.Open("../testdata/stories260K.bin")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load("../testdata/tok512.bin", m.Config.VocabSize)
	if err != nil {
		log.Fatal(err)
	}
	session, err := m.NewSession(model.SessionOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()

	type character struct {
		Name string `json:"name"`
		Age  int    `json:"age"`
	}
	g, err := grammar.FromJSONSchema([]byte(`{"type": "object",
		"properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer", "minimum": 1, "maximum": 9}},
		"required": ["name", "age"], "additionalProperties": false}`))
	if err != nil {
		log.Fatal(err)
	}
	prompt := tok.Encode("Once upon a time", true, false)
	var text []byte
	for t, err := range session.Tokens(context.Background(), prompt, model.GenerateOptions{
		MaxTokens: 100, Tokenizer: tok, Grammar: g}) { // no Sampler: greedy
		if err != nil {
			log.Fatal(err)
		}
		text = append(text, t.Text...)
	}
	var c character
	if err := json.Unmarshal(text, &c); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n%+v\n", bytes.TrimSpace(text), c)
	// Output:
	// { "name" : "I can he","age" : 3 }
	// {Name:I can he Age:3}
}
