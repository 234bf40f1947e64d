package model_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
)

// Generate a story greedily and collect its text: llama2.c's, which begins
// golden/stories260K-greedy.txt. (The fixtures come from `make fixtures`.)
func Example() {
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

	sampler := sample.New(m.Config.VocabSize, 0, 0.9, 1) // temperature 0: greedy
	prompt := tok.Encode("Once upon a time", true, false)
	var text strings.Builder
	decoder := tok.NewTextDecoder()
	_, err = session.Generate(context.Background(), prompt, sampler, 31, func(prev, next int) bool {
		text.Write(decoder.Append(nil, prev, next))
		return true
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(text.String())
	// Output: Once upon a time, there was a little girl named Lily. She loved to play outside in the park.
}

// Many sessions share one mapped model; each is used by one goroutine.
func ExampleModel_NewSession() {
	m, err := model.Open("../testdata/stories260K.bin")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	done := make(chan int)
	for range 3 {
		go func() {
			s, err := m.NewSession(model.SessionOptions{Threads: 1})
			if err != nil {
				log.Fatal(err)
			}
			defer s.Close()
			logits, err := s.Forward(tokenizer.BOS, 0)
			if err != nil {
				log.Fatal(err)
			}
			done <- sample.New(len(logits), 0, 0, 1).Sample(logits)
		}()
	}
	fmt.Println(<-done, <-done, <-done)
	// Output: 403 403 403
}

// Forward gives the logits of the next token; Sample picks one.
func ExampleSession_Forward() {
	m, err := model.Open("../testdata/stories260K.bin")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load("../testdata/tok512.bin", m.Config.VocabSize)
	if err != nil {
		log.Fatal(err)
	}
	s, err := m.NewSession(model.SessionOptions{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	sampler := sample.New(m.Config.VocabSize, 0, 0, 1)
	token := tokenizer.BOS
	for pos := range 6 {
		logits, err := s.Forward(token, pos)
		if err != nil {
			log.Fatal(err)
		}
		next := sampler.Sample(logits)
		fmt.Printf("%q ", tok.Decode(token, next))
		token = next
	}
	fmt.Println()
	// Output: "Once" " upon" " a" " time" "," " there"
}

// PrefillLogits feeds a whole prompt in batches and returns the logits
// after its last token: the weights are streamed once for the prompt.
func ExampleSession_PrefillLogits() {
	m, err := model.Open("../testdata/stories260K.bin")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load("../testdata/tok512.bin", m.Config.VocabSize)
	if err != nil {
		log.Fatal(err)
	}
	s, err := m.NewSession(model.SessionOptions{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	prompt := tok.Encode("Once upon a time", true, false)
	logits, err := s.PrefillLogits(prompt, 0)
	if err != nil {
		log.Fatal(err)
	}
	last := prompt[len(prompt)-1]
	next := sample.New(m.Config.VocabSize, 0, 0, 1).Sample(logits)
	fmt.Printf("%d prompt tokens, then %q\n", len(prompt), tok.Decode(last, next))
	// Output: 5 prompt tokens, then ","
}

// A GGUF file carries its vocabulary and chat template: open it and chat.
// The reply is llama.cpp's: its llama-simple (commit c392e50) prints the
// same 25 tokens for this prompt (`llama-simple -m stories260K-f32.gguf -n
// 25 "[INST] Tell me a story. [/INST]"`, which it encodes to the same ids
// as ChatPrompt, BOS first).
func ExampleModel_ChatPrompt() {
	m, err := model.Open("../testdata/gguf/stories260K-f32.gguf")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	tok := m.Tokenizer()
	prompt, err := m.ChatPrompt(tok, []chat.Message{{Role: "user", Content: "Tell me a story."}})
	if err != nil {
		log.Fatal(err)
	}
	s, err := m.NewSession(model.SessionOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	var reply []byte
	decoder := tok.NewTextDecoder()
	calls := 0
	// Positions up to len(prompt)+24: the prompt's last, then 25 sampled.
	s.Generate(context.Background(), prompt, nil, len(prompt)+24, func(prev, next int) bool { // nil: greedy
		if calls++; calls >= len(prompt) { // the reply, after the prompt
			reply = decoder.Append(reply, prev, next)
		}
		return true
	})
	fmt.Printf("%q\n", reply) // a story model: it does not really chat
	// Output: ", just like a special special. W"
}
