package chat

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/internal/testfixture"
)

// bpeGolden is a line of chat-templates-bpe.jsonl: real templates (Llama
// 3.1, 3.2, Qwen2.5, DeepSeek-R1 distill, Mistral Nemo) rendered by
// transformers' apply_chat_template, with tools and tool calls.
type bpeGolden struct {
	TemplateName        string            `json:"template_name"`
	Template            string            `json:"template"`
	BOSToken            *string           `json:"bos_token"`
	EOSToken            *string           `json:"eos_token"`
	Messages            []json.RawMessage `json:"messages"`
	AddGenerationPrompt bool              `json:"add_generation_prompt"`
	Tools               []json.RawMessage `json:"tools"`
	Date                string            `json:"date"`
	Rendered            *string           `json:"rendered"`
	Error               *string           `json:"error"`
}

// wireMessage is a message as the goldens (and OpenAI's API) write it.
type wireMessage struct {
	Role       string  `json:"role"`
	Content    *string `json:"content"`
	ToolCallID string  `json:"tool_call_id"`
	Name       string  `json:"name"`
	ToolCalls  []struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

// toMessage converts a golden message: arguments given as a JSON string
// stay a string, an object keeps its keys' order (json.RawMessage).
func toMessage(t *testing.T, raw json.RawMessage) Message {
	var w wireMessage
	require.NoError(t, json.Unmarshal(raw, &w))
	m := Message{Role: w.Role, ToolCallID: w.ToolCallID, Name: w.Name}
	if w.Content != nil {
		m.Content = *w.Content
	}
	for _, c := range w.ToolCalls {
		var args any = c.Function.Arguments
		if strings.HasPrefix(string(c.Function.Arguments), `"`) {
			var s string
			require.NoError(t, json.Unmarshal(c.Function.Arguments, &s))
			args = s
		}
		m.ToolCalls = append(m.ToolCalls, ToolCall{ID: c.ID, Type: c.Type, Function: FunctionCall{Name: c.Function.Name, Arguments: args}})
	}
	return m
}

func TestGoldensBPE(t *testing.T) {
	rows := testfixture.ReadJSONL[bpeGolden](t, "golden/gguf/chat-templates-bpe.jsonl")
	withTools, raised := 0, 0
	for i, c := range rows {
		t.Run(c.TemplateName, func(t *testing.T) {
			tmpl, err := Parse(c.Template)
			require.NoError(t, err)
			msgs := make([]Message, len(c.Messages))
			for j, raw := range c.Messages {
				msgs[j] = toMessage(t, raw)
			}
			now, err := time.Parse("02 Jan 2006", c.Date)
			require.NoError(t, err)
			opts := Options{AddGenerationPrompt: c.AddGenerationPrompt, Now: now}
			if c.BOSToken != nil {
				opts.BOSToken = *c.BOSToken
			}
			if c.EOSToken != nil {
				opts.EOSToken = *c.EOSToken
			}
			if c.Tools != nil {
				withTools++
				for _, tool := range c.Tools {
					opts.Tools = append(opts.Tools, tool)
				}
			}
			out, err := tmpl.Render(msgs, opts)
			if c.Rendered != nil {
				require.NoError(t, err, "row %d", i+1)
				assert.Equal(t, *c.Rendered, out, "row %d", i+1)
				return
			}
			raised++
			require.Error(t, err, "row %d: %s", i+1, *c.Error)
			// Python's message for a template's own raise_exception is
			// the template's; a TypeError is the engine's, in its words.
			if !strings.HasPrefix(*c.Error, "TypeError") {
				assert.ErrorIs(t, err, ErrRaised)
				assert.Contains(t, err.Error(), *c.Error)
			} else {
				assert.ErrorIs(t, err, ErrRender)
			}
		})
	}
	assert.Equal(t, 40, len(rows))
	assert.NotZero(t, withTools)
	assert.Equal(t, 2, raised)
}
