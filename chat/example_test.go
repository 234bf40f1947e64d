package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/llama2-go/llama2/chat"
)

func Example() {
	// A GGUF file's tokenizer.chat_template, or chat.Llama2 when it has none.
	tmpl, err := chat.Parse(chat.Llama2)
	if err != nil {
		fmt.Println(err)
		return
	}
	prompt, err := tmpl.Render([]chat.Message{
		{Role: "system", Content: "You are terse."},
		{Role: "user", Content: "Name a prime."},
	}, chat.Options{AddGenerationPrompt: true, BOSToken: "<s>", EOSToken: "</s>"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%q\n", prompt)

	// Templates enforce their own rules with raise_exception.
	_, err = tmpl.Render([]chat.Message{{Role: "assistant", Content: "Hi"}}, chat.Options{})
	fmt.Println(err)
	// Output:
	// "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nName a prime. [/INST]"
	// chat: template raised an exception: Conversation roles must alternate user/assistant/user/assistant/...
}

// A tool call and its result, rendered within tighter limits than the
// defaults, stopping if ctx ends first.
func ExampleTemplate_RenderContext() {
	tmpl, err := chat.Parse(`{% for m in messages %}` +
		`{% if m.tool_calls is defined %}call {{ m.tool_calls[0].function.name }}({{ m.tool_calls[0].function.arguments | tojson }})` +
		`{% else %}{{ m.role }}: {{ m.content }}{% endif %}{{ "\n" }}` +
		`{% endfor %}tools: {{ tools | map(attribute='function') | map(attribute='name') | join(', ') }}`)
	if err != nil {
		fmt.Println(err)
		return
	}
	msgs := []chat.Message{
		{Role: "user", Content: "Weather in Paris?"},
		{Role: "assistant", ToolCalls: []chat.ToolCall{{ID: "call1", Type: "function",
			Function: chat.FunctionCall{Name: "get_weather", Arguments: map[string]any{"city": "Paris"}}}}},
		{Role: "tool", ToolCallID: "call1", Name: "get_weather", Content: `{"temperature_c": 18}`},
	}
	tools := []any{json.RawMessage(`{"type": "function", "function": {"name": "get_weather"}}`)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	out, err := tmpl.RenderContext(ctx, msgs, chat.Options{Tools: tools, Limits: chat.Limits{MaxSteps: 10_000}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out)

	// A template that calls itself forever is stopped, not the process.
	loop, _ := chat.Parse(`{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}`)
	_, err = loop.RenderContext(ctx, msgs, chat.Options{})
	fmt.Println(err, errors.Is(err, chat.ErrLimit))
	// Output:
	// user: Weather in Paris?
	// call get_weather({"city": "Paris"})
	// tool: {"temperature_c": 18}
	// tools: get_weather
	// chat: template limit exceeded: macro calls nested more than 100 deep true
}
