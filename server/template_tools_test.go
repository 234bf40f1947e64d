package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/gguf"
	"github.com/llama2-go/llama2/model"
)

// newServerFor builds a server over a GGUF fixture with the given template
// options.
func newServerFor(t *testing.T, file string, o Options) *Server {
	t.Helper()
	if !filepath.IsAbs(file) {
		file = fixture(t, file)
	}
	m, err := model.Open(file)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	o.Parallel, o.Threads, o.Batch, o.Queue = 1, 1, 16, 1
	s, err := New(m, m.Tokenizer(), o)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestApplyTemplateGoldensBPE sends the conversations of
// chat-templates-bpe.jsonl, tools included, to /apply-template over a model
// whose vocabulary gives the template the golden's bos_token and
// eos_token: Llama 3's (l3rand), Llama 2's for Mistral Nemo's "<s>";
// Qwen2.5's template uses neither. (DeepSeek-R1's begin-of-sentence token is in no fixture;
// package chat renders its rows.) The server gives templates tool-call
// arguments as objects, parsing OpenAI's JSON strings (templates print
// them with tojson or index them), so a row with string arguments renders
// as its twin with object arguments does.
func TestApplyTemplateGoldensBPE(t *testing.T) {
	data, err := os.ReadFile(fixture(t, "golden/gguf/chat-templates-bpe.jsonl"))
	require.NoError(t, err)
	// The renderings of the rows with object arguments, by template and
	// conversation with the arguments as objects.
	withObjects := map[string]*string{}
	for line := range strings.Lines(string(data)) {
		var c struct {
			Name     string          `json:"template_name"`
			Messages json.RawMessage `json:"messages"`
			Rendered *string         `json:"rendered"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &c))
		if key, converted := argumentsAsObjects(t, c.Messages); !converted {
			withObjects[c.Name+key] = c.Rendered
		}
	}
	files := map[string]string{
		"meta-llama-Llama-3.1-8B-Instruct":     "gguf/l3rand-f32.gguf",
		"meta-llama-Llama-3.2-3B-Instruct":     "gguf/l3rand-f32.gguf",
		"Qwen-Qwen2.5-7B-Instruct":             "gguf/l3rand-f32.gguf", // uses neither token
		"mistralai-Mistral-Nemo-Instruct-2407": "gguf/rand-gqa-32k-f32.gguf",
	}
	ran := 0
	for line := range strings.Lines(string(data)) {
		var c struct {
			Name     string          `json:"template_name"`
			Template string          `json:"template"`
			Messages json.RawMessage `json:"messages"`
			Tools    json.RawMessage `json:"tools"`
			AddGen   bool            `json:"add_generation_prompt"`
			Date     string          `json:"date"`
			Rendered *string         `json:"rendered"`
			Error    string          `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &c))
		file, ok := files[c.Name]
		if !ok {
			continue
		}
		ran++
		t.Run(c.Name, func(t *testing.T) {
			url, client := startHTTP(t, newServerFor(t, file, Options{ChatTemplate: c.Template}))
			req := map[string]any{"messages": c.Messages, "add_generation_prompt": c.AddGen}
			if c.Tools != nil {
				req["tools"] = c.Tools
			}
			body, err := json.Marshal(req)
			require.NoError(t, err)
			code, resp := post(t, client, url+"/apply-template", string(body))
			if c.Rendered == nil {
				require.Equal(t, 400, code, string(resp))
				var e struct{ Error struct{ Message string } }
				require.NoError(t, json.Unmarshal(resp, &e))
				require.Contains(t, e.Error.Message, c.Error)
				return
			}
			require.Equal(t, 200, code, string(resp))
			var out struct{ Prompt string }
			require.NoError(t, json.Unmarshal(resp, &out))
			rendered := c.Rendered
			if key, converted := argumentsAsObjects(t, c.Messages); converted && withObjects[c.Name+key] != nil {
				rendered = withObjects[c.Name+key]
			}
			// strftime_now gives today's date where the golden has its own.
			want := strings.ReplaceAll(*rendered, c.Date, time.Now().Format("02 Jan 2006"))
			require.Equal(t, want, out.Prompt)
		})
	}
	require.Equal(t, 32, ran)
}

// argumentsAsObjects returns msgs (JSON) with every tool call's arguments
// string parsed into the object it holds, and whether there was one.
func argumentsAsObjects(t *testing.T, msgs json.RawMessage) (string, bool) {
	var list []map[string]any
	require.NoError(t, json.Unmarshal(msgs, &list))
	converted := false
	for _, m := range list {
		calls, _ := m["tool_calls"].([]any)
		for _, c := range calls {
			fn := c.(map[string]any)["function"].(map[string]any)
			if s, ok := fn["arguments"].(string); ok {
				var obj map[string]any
				require.NoError(t, json.Unmarshal([]byte(s), &obj))
				fn["arguments"], converted = obj, true
			}
		}
	}
	key, err := json.Marshal(list)
	require.NoError(t, err)
	return string(key), converted
}

// writeWithTemplate writes a copy of a GGUF fixture whose
// tokenizer.chat_template is tmpl, and returns its path.
func writeWithTemplate(t *testing.T, name, tmpl string) string {
	data, err := os.ReadFile(fixture(t, name))
	require.NoError(t, err)
	f, err := gguf.Parse(data)
	require.NoError(t, err)
	b := gguf.NewBuilder()
	for _, kv := range f.KV {
		b.Add(kv.Key, kv.Value.Interface())
	}
	b.Add("tokenizer.chat_template", tmpl)
	for _, ti := range f.Tensors {
		b.AddTensor(ti.Name, ti.Type, ti.Dims, ti.Data)
	}
	out, err := b.Bytes()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "hostile.gguf")
	require.NoError(t, os.WriteFile(path, out, 0o600))
	return path
}

// TestHostileTemplateIs400: a template that breaks a limit fails the
// request that rendered it with a 400, quickly, and the server answers the
// next request; the same for the template of a GGUF file.
func TestHostileTemplateIs400(t *testing.T) {
	hostile := `{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(0) }}`
	for name, s := range map[string]*Server{
		"-chat-template-file": newServerFor(t, "gguf/rand-gqa-32k-f32.gguf", Options{ChatTemplate: hostile}),
		"GGUF file":           newServerFor(t, writeWithTemplate(t, "gguf/rand-gqa-32k-f32.gguf", hostile), Options{}),
		"tight limits": newServerFor(t, "gguf/rand-gqa-32k-f32.gguf", Options{
			ChatTemplate:   `{% for i in range(1000) %}{{ messages[0].content }}{% endfor %}`,
			TemplateLimits: chat.Limits{MaxOutputBytes: 100},
		}),
	} {
		t.Run(name, func(t *testing.T) {
			url, client := startHTTP(t, s)
			msgs := `"messages": [{"role": "user", "content": "Hi"}]`
			for _, req := range []string{"/v1/chat/completions {" + msgs + `, "max_tokens": 1}`, "/apply-template {" + msgs + "}"} {
				path, body, _ := strings.Cut(req, " ")
				start := time.Now()
				code, resp := post(t, client, url+path, body)
				require.Equal(t, 400, code, string(resp))
				assert.Contains(t, string(resp), "the chat template failed on these messages: chat: template limit exceeded")
				assert.Less(t, time.Since(start), 5*time.Second)
			}
			code, resp := post(t, client, url+"/v1/completions", `{"prompt": "Once", "max_tokens": 2}`)
			require.Equal(t, 200, code, "the server carries on: %s", resp)
		})
	}
}

// TestTemplateRenderStopsWithTheRequest: the request's context reaches the
// render, which stops when the request ends.
func TestTemplateRenderStopsWithTheRequest(t *testing.T) {
	s := newServerFor(t, "gguf/rand-gqa-32k-f32.gguf", Options{
		ChatTemplate:   `{% set s = 'a' * 5000 %}{% for x in s %}{% for y in s %}{% endfor %}{% endfor %}`,
		TemplateLimits: chat.Limits{Timeout: -1, MaxSteps: -1}, // only the request stops it
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, rerr := s.renderTemplate(ctx, []chatMessage{{Role: "user", Content: json.RawMessage(`"Hi"`)}}, true, false, nil)
	require.NotNil(t, rerr)
	assert.Contains(t, rerr.msg, "context deadline exceeded")
	assert.Less(t, time.Since(start), 2*time.Second)
}

// TestChatToolCallsReachTheTemplate: tool_calls (arguments as a JSON
// string or an object), tool results and tools go through
// /v1/chat/completions and /apply-template to the template.
func TestChatToolCallsReachTheTemplate(t *testing.T) {
	tmpl := `{% for m in messages %}{{ m.role }}|{% if m.tool_calls is defined %}{{ m.tool_calls[0].function.name }}:{{ m.tool_calls[0].function.arguments | tojson }}|{{ m.content is none }}{% else %}{{ m.content }}{% endif %}{% if m.tool_call_id is defined %}#{{ m.tool_call_id }}{% endif %};{% endfor %}{{ tools | tojson }}`
	url, client := startHTTP(t, newServerFor(t, "gguf/rand-gqa-32k-f32.gguf", Options{ChatTemplate: tmpl}))
	body := `{"messages": [
		{"role": "user", "content": "Weather?"},
		{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get", "arguments": "{\"city\": \"Paris\"}"}}]},
		{"role": "assistant", "tool_calls": [{"id": "c2", "type": "function", "function": {"name": "get", "arguments": {"z": 1, "a": 2}}}]},
		{"role": "tool", "tool_call_id": "c1", "content": "18"}],
		"tools": [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}]}`
	code, resp := post(t, client, url+"/apply-template", body)
	require.Equal(t, 200, code, string(resp))
	var out struct{ Prompt string }
	require.NoError(t, json.Unmarshal(resp, &out))
	// The arguments string reaches the template as the object it holds.
	assert.Equal(t, `user|Weather?;assistant|get:{"city": "Paris"}|True;assistant|get:{"z": 1, "a": 2}|True;tool|18#c1;`+
		`[{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}]`, out.Prompt)

	code, resp = post(t, client, url+"/v1/chat/completions", body[:len(body)-1]+`, "max_tokens": 1}`)
	require.Equal(t, 200, code, string(resp))
}

// TestToolArgumentsAsTextWhenObjectsFail: a template that fails on
// arguments as an object (it adds them to a string, as DeepSeek-R1's
// does) gets their JSON text instead; one that raises stays an error.
func TestToolArgumentsAsTextWhenObjectsFail(t *testing.T) {
	body := `{"messages": [{"role": "user", "content": "Weather?"},
		{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get", "arguments": "{\"city\": \"Paris\"}"}}]}]}`
	tmpl := `{{ 'args=' + messages[1].tool_calls[0].function.arguments }}`
	url, client := startHTTP(t, newServerFor(t, "gguf/rand-gqa-32k-f32.gguf", Options{ChatTemplate: tmpl}))
	code, resp := post(t, client, url+"/apply-template", body)
	require.Equal(t, 200, code, string(resp))
	var out struct{ Prompt string }
	require.NoError(t, json.Unmarshal(resp, &out))
	assert.Equal(t, `args={"city": "Paris"}`, out.Prompt)

	raising := `{{ raise_exception('no tools here') if messages[1].tool_calls is defined }}`
	url, client = startHTTP(t, newServerFor(t, "gguf/rand-gqa-32k-f32.gguf", Options{ChatTemplate: raising}))
	code, resp = post(t, client, url+"/apply-template", body)
	require.Equal(t, 400, code, string(resp))
	assert.Contains(t, string(resp), "no tools here")
}
