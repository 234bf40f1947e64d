// Package chat renders a conversation with a model's chat template: the
// Jinja template a GGUF file stores under tokenizer.chat_template (and a
// Hugging Face model under chat_template in tokenizer_config.json). It does
// what Hugging Face's apply_chat_template does: Jinja with trim_blocks and
// lstrip_blocks on, and the variables messages (a list of {role, content}
// maps, keys in that order), add_generation_prompt, bos_token, eos_token and
// a callable raise_exception(msg) that aborts rendering with msg.
//
// Templates are interpreted by a real Jinja engine, so any template works,
// not only a list of known ones.
//
// # Why this library
//
// The engine is github.com/ardanlabs/jinja (Apache-2.0, pure Go, no
// dependencies of its own), pinned at v1.8.0, the newest release that builds
// with Go 1.26 (v1.9.0 and later require Go 1.27). It was compared with
// github.com/nikolalohinski/gonja/v2 v2.9.1 (MIT) and
// github.com/flosch/pongo2/v6 v6.0.0 (MIT) on the project's golden templates,
// on small templates that exercise the features chat templates lean on
// (.strip()/.split()/.startswith() string methods, loop.index0/loop.last,
// messages[1:] and messages[-1], namespace, is defined, + and ~, |trim,
// |tojson, macros, break) and on the 17 real model templates in llama.cpp's
// models/templates, each checked byte for byte against Python's Jinja2 set
// up as Hugging Face sets it up. ardanlabs/jinja matched 128 of 132 cases
// (all goldens and all real templates; it prints {{ none }} as "" where
// Jinja2 prints "None"). gonja matched 114: its .lstrip() and .split()
// reject being called without arguments, messages[-1] can fail, tojson
// sorts keys, and it pulls in logrus, pkg/errors, json-iterator, x/exp and
// x/text and reads {% include %} from the file system unless told not to.
// pongo2 matched 10: it is Django syntax (no messages[1:], no .strip(), no
// Python-style string escapes). ardanlabs/jinja is also the only one written
// for chat templates: whitespace control follows Hugging Face's settings
// without configuration, and it is actively released.
//
// # Safety
//
// Templates come from downloaded files, so Render never panics (a panic in
// the engine becomes an ErrRender error), rejects output longer than
// MaxOutputBytes, and bounds range() to MaxRangeItems numbers per render,
// which also bounds nested range loops. Parse rejects sources longer than
// MaxSourceBytes. The engine has no include, import or extends, so a
// template cannot read files. The engine at v1.8.0 has no hook for more: a hostile
// template can still make it allocate without limit, which the Go runtime
// answers by ending the process, not with a panic: a huge string
// repetition ('x' * 10**11), a huge |indent(width) or |tojson(indent=n), a
// namespace string doubled in a loop, or a macro that calls itself forever.
// v1.12.0 bounds repetition; it needs Go 1.27. Render output is checked
// after rendering, so a long output costs its memory once before it is
// refused.
package chat

import (
	"errors"
	"fmt"

	"github.com/ardanlabs/jinja"
)

// Errors that Parse and Render return, wrapped; test with errors.Is.
var (
	// ErrSyntax marks a template that cannot be parsed.
	ErrSyntax = errors.New("chat: template syntax error")
	// ErrRaised marks a template that called raise_exception; the error's
	// message ends with the template's own message.
	ErrRaised = errors.New("chat: template raised an exception")
	// ErrRender marks any other failure while rendering: an unknown
	// function, a type error, a limit exceeded, a panic in the engine.
	ErrRender = errors.New("chat: template render error")
)

// Limits on what a template may do. Real chat templates stay far below
// them; they exist so a hostile template fails instead of taking the
// process down.
const (
	// MaxSourceBytes is the longest template source Parse accepts. The
	// longest real chat templates are a few tens of KiB.
	MaxSourceBytes = 1 << 20
	// MaxOutputBytes is the longest rendered conversation Render returns.
	MaxOutputBytes = 1 << 20
	// MaxRangeItems is how many numbers all range() calls of one render
	// may produce together (Jinja2's sandbox allows 100000 per call).
	MaxRangeItems = 100000
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// ToolCalls are the calls of an assistant message (tool_calls in the
	// template); ToolCallID is the call a tool message answers, and Name
	// the tool's name.
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Name       string     `json:"name,omitempty"`
}

// ToolCall is one call of a tool by the assistant.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall is a function's name and its arguments: a JSON object as a
// map[string]any, or a JSON string.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments any    `json:"arguments"`
}

// Options are the template's other inputs.
type Options struct {
	// AddGenerationPrompt asks the template to end with the tokens that
	// open the assistant's turn.
	AddGenerationPrompt bool
	// BOSToken and EOSToken are the model's begin- and end-of-sequence
	// token texts (e.g. "<s>" and "</s>").
	BOSToken, EOSToken string
	// Tools are the tool definitions (JSON-decoded) passed to the
	// template as tools, Documents as documents; nil leaves them
	// undefined.
	Tools     []any
	Documents []any
}

// Template is a parsed chat template, safe for concurrent use by many
// goroutines.
type Template struct {
	src  string
	tmpl *jinja.Template
}

// RaisedError is the error Render returns when the template calls
// raise_exception. It matches ErrRaised with errors.Is.
type RaisedError struct {
	// Message is the template's message, verbatim.
	Message string
}

// Error returns "chat: template raised an exception: " and the message.
func (e *RaisedError) Error() string { return ErrRaised.Error() + ": " + e.Message }

// Unwrap lets errors.Is(err, ErrRaised) hold.
func (e *RaisedError) Unwrap() error { return ErrRaised }

// Parse compiles a chat template. Errors wrap ErrSyntax.
func Parse(src string) (t *Template, err error) {
	if len(src) > MaxSourceBytes {
		return nil, fmt.Errorf("%w: template is %d bytes, more than the %d allowed", ErrSyntax, len(src), MaxSourceBytes)
	}
	// The parser is as exposed to hostile input as the renderer.
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("%w: parser panicked: %v", ErrSyntax, r)
		}
	}()
	tmpl, err := jinja.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return &Template{src: src, tmpl: tmpl}, nil
}

// Source returns the template text Parse was given.
func (t *Template) Source() string { return t.src }

// Render renders msgs with the template. A raise_exception call in the
// template returns a *RaisedError (errors.Is ErrRaised) carrying the
// template's message; every other failure wraps ErrRender.
func (t *Template) Render(msgs []Message, opts Options) (out string, err error) {
	// Every render gets its own state: the raise_exception message and the
	// range budget belong to this call, which keeps Template shareable.
	st := &renderState{rangeLeft: MaxRangeItems}
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("%w: engine panicked: %v", ErrRender, r)
		}
	}()
	out, err = t.tmpl.RenderValues(st.vars(msgs, opts))
	// Checked before err: a raise may surface as some other error (or none,
	// if the engine swallowed it), but in Jinja it always ends rendering.
	if st.raised != nil {
		return "", &RaisedError{Message: *st.raised}
	}
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrRender, err)
	}
	if len(out) > MaxOutputBytes {
		return "", fmt.Errorf("%w: output is %d bytes, more than the %d allowed", ErrRender, len(out), MaxOutputBytes)
	}
	return out, nil
}

// messageValues builds the messages list as ordered dicts, role first, as
// Python's dicts keep them, so |tojson prints keys in Hugging Face's order.
func messageValues(msgs []Message) jinja.Value {
	items := make([]jinja.Value, len(msgs))
	for i, m := range msgs {
		d := jinja.NewDict()
		d.AsDict().Set("role", jinja.NewString(m.Role))
		d.AsDict().Set("content", jinja.NewString(m.Content))
		if len(m.ToolCalls) > 0 {
			calls := make([]any, len(m.ToolCalls))
			for j, c := range m.ToolCalls {
				calls[j] = map[string]any{"id": c.ID, "type": c.Type,
					"function": map[string]any{"name": c.Function.Name, "arguments": c.Function.Arguments}}
			}
			d.AsDict().Set("tool_calls", jinja.FromGoValue(calls))
		}
		if m.ToolCallID != "" {
			d.AsDict().Set("tool_call_id", jinja.NewString(m.ToolCallID))
		}
		if m.Name != "" {
			d.AsDict().Set("name", jinja.NewString(m.Name))
		}
		items[i] = d
	}
	return jinja.NewList(items)
}

// Llama2 is the Llama 2 chat template (the fallback for files without one),
// in Jinja, as Meta's and Hugging Face's tokenizer_config.json for
// Llama-2-chat have it. An optional first system message goes inside the
// first [INST] block between <<SYS>> markers; roles must alternate
// user/assistant.
const Llama2 = `{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`
