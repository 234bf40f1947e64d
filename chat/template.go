// Package chat renders a conversation with a model's chat template: the
// Jinja template a GGUF file stores under tokenizer.chat_template (and a
// Hugging Face model under chat_template in tokenizer_config.json). It does
// what Hugging Face's apply_chat_template does: Jinja with trim_blocks and
// lstrip_blocks on, and the variables messages (a list of maps with role
// and content, and tool_calls, tool_call_id and name where a message has
// them), add_generation_prompt, bos_token, eos_token, tools and documents
// (undefined unless given), and the functions raise_exception(msg), which
// aborts rendering with msg, and strftime_now(format).
//
// Templates are interpreted by a real Jinja engine, so any template works,
// not only a list of known ones.
//
// # Why this library
//
// The engine is github.com/ardanlabs/jinja (Apache-2.0, pure Go, no
// dependencies of its own) at v1.14.0, carried in internal/jinja with the
// hooks that bound a render added (see Safety). It was compared with
// github.com/nikolalohinski/gonja/v2 v2.9.1 (MIT) and
// github.com/flosch/pongo2/v6 v6.0.0 (MIT) on the project's golden
// templates, on small templates that exercise the features chat templates
// lean on (.strip()/.split()/.startswith() string methods,
// loop.index0/loop.last, messages[1:] and messages[-1], namespace, is
// defined, + and ~, |trim, |tojson, macros, break) and on the 17 real model
// templates in llama.cpp's models/templates, each checked byte for byte
// against Python's Jinja2 set up as Hugging Face sets it up. ardanlabs/jinja
// matched 128 of 132 cases at v1.8.0; gonja matched 114 (its .lstrip() and
// .split() reject being called without arguments, messages[-1] can fail,
// tojson sorts keys, and it pulls in logrus, pkg/errors, json-iterator,
// x/exp and x/text); pongo2 matched 10 (it is Django syntax). At v1.14.0
// ardanlabs/jinja prints {{ none }} as "None" as Jinja2 does, keeps text
// after a block tag whole ({% endfor %}{{ x }}\n\nY keeps its newlines,
// which v1.8.0 dropped), treats a negative repetition as empty and renders
// every golden here: the 20 public ones and the 40 of Llama 3.1, 3.2,
// Qwen2.5, DeepSeek-R1 distill and Mistral Nemo with tools and tool calls.
//
// # Safety
//
// Templates come from downloaded files, so a template must not be able to
// take the process down or hold it. Parse rejects sources longer than
// MaxSourceBytes; the engine has no include, import or extends, so a
// template cannot read files. Every render runs within [Limits]: a step
// budget (statements, expressions, loop iterations and the elements that
// filters, comparisons and printing walk), a depth (nested macro calls and
// nested values), an output size, a memory budget (the bytes of strings
// and lists built, with operations that would build more refused before
// they allocate), a time limit and the caller's context. A render that
// breaks one fails with an error wrapping [ErrLimit] (or the context's
// error); a panic in the engine becomes an [ErrRender] error.
package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/llama2-go/llama2/internal/jinja"
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
	// ErrLimit marks, besides ErrRender, a render stopped by one of its
	// Limits.
	ErrLimit = errors.New("chat: template limit exceeded")
)

// MaxSourceBytes is the longest template source Parse accepts. The
// longest real chat templates are a few tens of KiB.
const MaxSourceBytes = 1 << 20

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

// limitError is a render stopped by a limit: ErrRender and ErrLimit.
type limitError struct{ detail string }

func (e *limitError) Error() string   { return ErrLimit.Error() + ": " + e.detail }
func (e *limitError) Unwrap() []error { return []error{ErrRender, ErrLimit} }

// Parse compiles a chat template. Errors wrap ErrSyntax.
func Parse(src string) (t *Template, err error) {
	if len(src) > MaxSourceBytes {
		return nil, fmt.Errorf("%w: template is %d bytes, more than the %d allowed", ErrSyntax, len(src), MaxSourceBytes)
	}
	if err := checkNesting(src); err != nil {
		return nil, err
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

// Render is RenderContext without a context of its own: only the limits
// of opts stop it.
func (t *Template) Render(msgs []Message, opts Options) (string, error) {
	return t.RenderContext(context.Background(), msgs, opts)
}

// RenderContext renders msgs with the template. A raise_exception call in
// the template returns a *RaisedError (errors.Is ErrRaised) carrying the
// template's message; a render that breaks one of opts.Limits returns an
// error wrapping ErrRender and ErrLimit; one that ctx stops, an error
// wrapping ErrRender and ctx's error (context.Canceled, ...); every other
// failure wraps ErrRender.
func (t *Template) RenderContext(ctx context.Context, msgs []Message, opts Options) (out string, err error) {
	// Every render gets its own state: the raise_exception message and the
	// range budget belong to this call, which keeps Template shareable.
	st := &renderState{rangeLeft: MaxRangeItems, now: opts.Now}
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("%w: engine panicked: %v", ErrRender, r)
		}
	}()
	vars, err := st.vars(msgs, opts)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrRender, err)
	}
	lim := opts.Limits.withDefaults()
	out, err = t.tmpl.RenderContext(ctx, vars, lim.engine())
	// Checked before err: a raise may surface as some other error (or none,
	// if the engine swallowed it), but in Jinja it always ends rendering.
	if st.raised != nil {
		return "", &RaisedError{Message: *st.raised}
	}
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, jinja.ErrLimit):
		detail := strings.Replace(err.Error(), jinja.ErrLimit.Error()+": ", "", 1)
		return "", &limitError{detail}
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return "", fmt.Errorf("%w: %w", ErrRender, err)
	}
	return "", fmt.Errorf("%w: %v", ErrRender, err)
}

// maxNesting bounds how deeply brackets and block tags nest in a source:
// the parser recurses once a level, and real templates nest a few levels.
const maxNesting = 256

// checkNesting refuses a source whose brackets ( [ { nest deeper than
// maxNesting, before the engine's recursive parser meets it. It counts
// every bracket, in text and strings too, which only overestimates.
func checkNesting(src string) error {
	depth := 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '(', '[', '{':
			if depth++; depth > maxNesting {
				return fmt.Errorf("%w: brackets nest more than %d deep (at byte %d)", ErrSyntax, maxNesting, i)
			}
		case ')', ']', '}':
			depth = max(0, depth-1)
		}
	}
	return nil
}

// Llama2 is the Llama 2 chat template (the fallback for files without one),
// in Jinja, as Meta's and Hugging Face's tokenizer_config.json for
// Llama-2-chat have it. An optional first system message goes inside the
// first [INST] block between <<SYS>> markers; roles must alternate
// user/assistant.
const Llama2 = `{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`
