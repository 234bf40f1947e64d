package hub_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/llama2-go/llama2/hub"
)

// Pull a llama2.c checkpoint (hub.TokenizerFor would then give its
// tokenizer). Against Hugging Face the
// zero Options do (HF_ENDPOINT, HF_TOKEN and LLAMA2_CACHE are read from
// the environment); here a local server stands in for the hub.
func ExamplePull() {
	model := []byte("the weights of stories15M.bin")
	sum := sha256.Sum256(model)
	fakeHub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Hugging Face's resolve URL, as for a file in LFS: checksum and size in headers.
		w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(sum[:])+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(model)))
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(model)))
	}))
	defer fakeHub.Close()
	cache, _ := os.MkdirTemp("", "llama2-cache")
	defer os.RemoveAll(cache)

	opts := hub.Options{
		Endpoint: fakeHub.URL,
		CacheDir: cache,
		Progress: func(p hub.Progress) {
			if p.Event == hub.Verified {
				fmt.Printf("%s/%s: %d bytes, verified\n", p.Repo, p.File, p.Done)
			}
		},
	}
	path, err := hub.Pull(context.Background(), "karpathy/tinyllamas/stories15M.bin", opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	rel, _ := filepath.Rel(cache, path)
	fmt.Println(filepath.ToSlash(rel))
	// Output:
	// karpathy/tinyllamas/stories15M.bin: 29 bytes, verified
	// hub/karpathy/tinyllamas/stories15M.bin
}

func ExampleParseRef() {
	for _, s := range []string{
		"bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
		"bartowski/Llama-3.2-1B-Instruct-GGUF",
		"karpathy/tinyllamas/stories15M.bin",
	} {
		r, err := hub.ParseRef(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("repo %s, tag %q, file %q\n", r.Repo(), r.Tag, r.File)
	}
	// Output:
	// repo bartowski/Llama-3.2-1B-Instruct-GGUF, tag "Q4_K_M", file ""
	// repo bartowski/Llama-3.2-1B-Instruct-GGUF, tag "", file ""
	// repo karpathy/tinyllamas, tag "", file "stories15M.bin"
}
