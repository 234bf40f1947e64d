package server_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/server"
	"github.com/llama2-go/llama2/tokenizer"
)

// A Go program mounts the OpenAI API on its own mux under /llm/, beside
// its own routes. (httptest stands in for http.ListenAndServe; the
// fixtures come from `make fixtures`.)
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
	llm, err := server.New(m, tok, server.Options{Parallel: 4, Queue: 8})
	if err != nil {
		log.Fatal(err)
	}
	defer llm.Close() // before m.Close: it frees the slots

	mux := http.NewServeMux()
	mux.Handle("/llm/", http.StripPrefix("/llm", llm))
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello\n") })
	web := httptest.NewServer(mux)
	defer web.Close()

	resp, err := http.Post(web.URL+"/llm/v1/completions", "application/json",
		strings.NewReader(`{"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, strings.Contains(string(body), `"text":", there was a little girl"`))
	// Output: 200 true
}

// Serve runs the server on a listener of its own until the context is
// cancelled, then drains it: see the serve subcommand (serve.go) for the
// whole program with flags and signals.
func ExampleServer_Serve() {
	m, err := model.Open("../testdata/stories260K.bin")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load("../testdata/tok512.bin", m.Config.VocabSize)
	if err != nil {
		log.Fatal(err)
	}
	s, err := server.New(m, tok, server.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println(s.Options().Parallel, "slots of", server.KVBytesPerSlot(m, model.KVF32, model.KVF32), "bytes of KV cache")
	// Output: 8 slots of 655360 bytes of KV cache
}
