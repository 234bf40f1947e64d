package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/llama2-go/llama2/internal/jinja"
)

// Message is one turn of a conversation, as OpenAI's chat API and Hugging
// Face's templates have it.
type Message struct {
	// Role is "system", "user", "assistant", "tool", "ipython", ...: the
	// template decides which it accepts.
	Role string `json:"role"`
	// Content is the text. An assistant message with ToolCalls and no
	// content gets content none, as OpenAI's null content.
	Content string `json:"content"`
	// ToolCalls are an assistant's calls of tools.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID is, in a tool's message, the call it answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
	// Name is, in a tool's message, the tool's name.
	Name string `json:"name,omitempty"`
}

// ToolCall is one call of a tool by the assistant.
type ToolCall struct {
	ID   string `json:"id,omitempty"`
	Type string `json:"type,omitempty"` // "function"
	// Function is the function called and its arguments.
	Function FunctionCall `json:"function"`
}

// FunctionCall names a function and its arguments.
type FunctionCall struct {
	Name string `json:"name"`
	// Arguments is given to the template as it is: a JSON object decoded
	// into map[string]any (Hugging Face's convention: |tojson prints it),
	// or a string holding JSON (OpenAI's wire form, which some templates
	// need: DeepSeek-R1's concatenates it), or a json.RawMessage, decoded
	// with its keys in their order.
	Arguments any `json:"arguments"`
}

// Options are the template's other inputs.
type Options struct {
	// AddGenerationPrompt asks the template to end with the tokens that
	// open the assistant's turn.
	AddGenerationPrompt bool
	// BOSToken and EOSToken are the model's begin- and end-of-sequence
	// token texts (e.g. "<s>" and "</s>").
	BOSToken, EOSToken string
	// Tools are the tool definitions, passed as tools; nil leaves tools
	// undefined, as transformers does. Documents are passed as documents
	// the same way. Their elements are JSON values as encoding/json
	// decodes them into an any (map[string]any, []any, string, float64,
	// bool, nil; a float64 with an integral value is an integer, as
	// Python's json would read it), or json.RawMessage, which keeps the
	// keys in their order for |tojson (a map's keys print sorted).
	Tools, Documents []any
	// Now is the time strftime_now formats; zero is the current time.
	Now time.Time
	// Limits bound the render; zero fields take DefaultLimits'.
	Limits Limits
}

// messageValues builds the messages list as ordered dicts, keys in the
// order Python's dicts keep them for a request read from JSON, so |tojson
// prints them in Hugging Face's order. Optional keys are absent, not
// empty, so templates' "is defined" tests see what transformers passes.
func messageValues(msgs []Message) (jinja.Value, error) {
	items := make([]jinja.Value, len(msgs))
	for i, m := range msgs {
		d := jinja.NewDict()
		dict := d.AsDict()
		dict.Set("role", jinja.NewString(m.Role))
		if m.ToolCallID != "" {
			dict.Set("tool_call_id", jinja.NewString(m.ToolCallID))
		}
		if m.Name != "" {
			dict.Set("name", jinja.NewString(m.Name))
		}
		if m.Content == "" && len(m.ToolCalls) > 0 {
			dict.Set("content", jinja.None())
		} else {
			dict.Set("content", jinja.NewString(m.Content))
		}
		if len(m.ToolCalls) > 0 {
			calls := make([]jinja.Value, len(m.ToolCalls))
			for j, c := range m.ToolCalls {
				call := jinja.NewDict()
				if c.ID != "" {
					call.AsDict().Set("id", jinja.NewString(c.ID))
				}
				if c.Type != "" {
					call.AsDict().Set("type", jinja.NewString(c.Type))
				}
				fn := jinja.NewDict()
				fn.AsDict().Set("name", jinja.NewString(c.Function.Name))
				args, err := toValue(c.Function.Arguments, 0)
				if err != nil {
					return jinja.Value{}, fmt.Errorf("messages[%d].tool_calls[%d].function.arguments: %w", i, j, err)
				}
				fn.AsDict().Set("arguments", args)
				call.AsDict().Set("function", fn)
				calls[j] = call
			}
			dict.Set("tool_calls", jinja.NewList(calls))
		}
		items[i] = d
	}
	return jinja.NewList(items), nil
}

// maxValueDepth bounds the nesting of tools, documents and arguments.
const maxValueDepth = 64

// toValue converts a JSON value, as encoding/json decodes it or as raw
// JSON, to the engine's.
func toValue(x any, depth int) (jinja.Value, error) {
	if depth > maxValueDepth {
		return jinja.Value{}, fmt.Errorf("nested more than %d deep", maxValueDepth)
	}
	switch v := x.(type) {
	case nil:
		return jinja.None(), nil
	case bool:
		return jinja.NewBool(v), nil
	case string:
		return jinja.NewString(v), nil
	case int:
		return jinja.NewInt(int64(v)), nil
	case int64:
		return jinja.NewInt(v), nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return jinja.NewInt(int64(v)), nil
		}
		return jinja.NewFloat(v), nil
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return jinja.NewInt(n), nil
		}
		f, err := v.Float64()
		if err != nil {
			return jinja.Value{}, fmt.Errorf("number %q: %w", v, err)
		}
		return jinja.NewFloat(f), nil
	case json.RawMessage:
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		val, err := decodeOrdered(dec, depth)
		if err != nil {
			return jinja.Value{}, err
		}
		if dec.More() {
			return jinja.Value{}, fmt.Errorf("more than one JSON value")
		}
		return val, nil
	case []any:
		items := make([]jinja.Value, len(v))
		for i, e := range v {
			var err error
			if items[i], err = toValue(e, depth+1); err != nil {
				return jinja.Value{}, err
			}
		}
		return jinja.NewList(items), nil
	case map[string]any:
		d := jinja.NewDict()
		for _, k := range slices.Sorted(maps.Keys(v)) {
			e, err := toValue(v[k], depth+1)
			if err != nil {
				return jinja.Value{}, err
			}
			d.AsDict().Set(k, e)
		}
		return d, nil
	}
	return jinja.Value{}, fmt.Errorf("%T is not a JSON value", x)
}

// decodeOrdered reads one JSON value, objects as dicts with their keys in
// the order written.
func decodeOrdered(dec *json.Decoder, depth int) (jinja.Value, error) {
	if depth > maxValueDepth {
		return jinja.Value{}, fmt.Errorf("nested more than %d deep", maxValueDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return jinja.Value{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			var items []jinja.Value
			for dec.More() {
				v, err := decodeOrdered(dec, depth+1)
				if err != nil {
					return jinja.Value{}, err
				}
				items = append(items, v)
			}
			_, err := dec.Token()
			return jinja.NewList(items), err
		case '{':
			d := jinja.NewDict()
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return jinja.Value{}, err
				}
				v, err := decodeOrdered(dec, depth+1)
				if err != nil {
					return jinja.Value{}, err
				}
				d.AsDict().Set(k.(string), v)
			}
			_, err := dec.Token()
			return d, err
		}
		return jinja.Value{}, fmt.Errorf("unexpected %v", t)
	}
	return toValue(tok, depth)
}
