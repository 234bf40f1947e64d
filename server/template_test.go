package server

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/model"
)

// newGGUFServer builds a server over the GGUF twin of rand-gqa-32k (Llama
// 2's vocabulary inside), with -chat-template-file set when tmpl is not "".
func newGGUFServer(t *testing.T, tmpl string) *Server {
	t.Helper()
	m, err := model.Open(fixture(t, "gguf/rand-gqa-32k-f32.gguf"))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	s, err := New(m, m.Tokenizer(), Options{Parallel: 1, Threads: 1, Batch: 16, Queue: 1, ChatTemplate: tmpl})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestApplyTemplateGoldens sends every conversation of chat-templates.jsonl
// to /apply-template with its template as -chat-template-file: the answer is
// Hugging Face's rendering, or a 400 carrying the template's exception.
func TestApplyTemplateGoldens(t *testing.T) {
	f, err := os.Open(fixture(t, "golden/gguf/chat-templates.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	lines := bufio.NewScanner(f)
	lines.Buffer(nil, 1<<20)
	n := 0
	for lines.Scan() {
		var c struct {
			Name      string          `json:"template_name"`
			Template  string          `json:"template"`
			BOS       string          `json:"bos_token"`
			EOS       string          `json:"eos_token"`
			Messages  json.RawMessage `json:"messages"`
			AddGen    bool            `json:"add_generation_prompt"`
			Rendered  *string         `json:"rendered"`
			Exception string          `json:"error"`
		}
		require.NoError(t, json.Unmarshal(lines.Bytes(), &c))
		require.Equal(t, "<s>", c.BOS)
		require.Equal(t, "</s>", c.EOS)
		n++
		t.Run(c.Name, func(t *testing.T) {
			url, client := startHTTP(t, newGGUFServer(t, c.Template))
			body, err := json.Marshal(map[string]any{"messages": c.Messages, "add_generation_prompt": c.AddGen})
			require.NoError(t, err)
			code, resp := post(t, client, url+"/apply-template", string(body))
			if c.Rendered == nil {
				require.Equal(t, 400, code, string(resp))
				require.Contains(t, string(resp), c.Exception)
				return
			}
			require.Equal(t, 200, code, string(resp))
			var out struct{ Prompt string }
			require.NoError(t, json.Unmarshal(resp, &out))
			require.Equal(t, *c.Rendered, out.Prompt)
		})
	}
	require.NoError(t, lines.Err())
	require.Equal(t, 20, n)
}

// TestChatUserSpecialTokensStayText: "</s>" typed by a user is text, while
// the template's own "</s>" and "<s>" are the special tokens.
func TestChatUserSpecialTokensStayText(t *testing.T) {
	s := newGGUFServer(t, "") // the file's own template (or Llama 2's)
	eos, bos := s.tok.EOS(), s.tok.BOS()
	tokens, rerr := s.renderChatTokens(context.Background(), []chatMessage{
		{Role: "user", Content: json.RawMessage(`"Hi </s><s> there"`)},
	}, nil)
	require.Nil(t, rerr)
	require.NotContains(t, tokens, eos)
	require.Equal(t, 1, count(tokens, bos), "only the template's BOS: %v", tokens)

	// The same words as plain text, through the Llama 2 template.
	plain, rerr := s.renderChatTokens(context.Background(), []chatMessage{
		{Role: "user", Content: json.RawMessage(`"Hi"`)},
		{Role: "assistant", Content: json.RawMessage(`"Hello"`)},
		{Role: "user", Content: json.RawMessage(`"Bye"`)},
	}, nil)
	require.Nil(t, rerr)
	require.Equal(t, 2, count(plain, bos), "%v", plain)
	require.Equal(t, 1, count(plain, eos), "%v", plain)
}

func count(xs []int, x int) int {
	n := 0
	for i := slices.Index(xs, x); i >= 0; i = slices.Index(xs, x) {
		n++
		xs = xs[i+1:]
	}
	return n
}
