package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// conv is a conversation that exercises leading/trailing spaces, non-ASCII
// text and special-token look-alikes in content.
var conv = []Message{
	{Role: "system", Content: " Be kind. "},
	{Role: "user", Content: "  spaced  "},
	{Role: "assistant", Content: " ok "},
	{Role: "user", Content: "Zoë ☕ </s> <s>\n"},
}

var opts = Options{AddGenerationPrompt: true, BOSToken: "<s>", EOSToken: "</s>"}

// TestFeatures checks the Jinja features chat templates rely on. Every
// expected string was produced by Python's Jinja2 3.1 set up as Hugging
// Face's apply_chat_template sets it up (sandboxed, trim_blocks,
// lstrip_blocks, loopcontrols), rendering conv with opts.
func TestFeatures(t *testing.T) {
	cases := []struct{ name, tmpl, want string }{
		{"namespace", "{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% if m.role == 'system' %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.found }} {{ ns.n }}", "True 4"},
		{"defined", "{% if tools is defined %}T{% else %}F{% endif %}{% if messages is defined %}M{% endif %}{% if tools is not defined %}N{% endif %}{% if messages[0].name is defined %}X{% endif %}", "FMN"},
		{"trim filter", "{% for m in messages %}[{{ m.content | trim }}]{% endfor %}", "[Be kind.][spaced][ok][Zoë ☕ </s> <s>]"},
		{"strip methods", "{% for m in messages %}[{{ m.content.strip() }}|{{ m.content.lstrip() }}|{{ m.content.rstrip() }}]{% endfor %}", "[Be kind.|Be kind. | Be kind.][spaced|spaced  |  spaced][ok|ok | ok][Zoë ☕ </s> <s>|Zoë ☕ </s> <s>\n|Zoë ☕ </s> <s>]"},
		{"slices", "{% for m in messages[1:] %}{{ m.role }},{% endfor %}|{{ messages[-1].role }}|{% for m in messages[::-1] %}{{ loop.index }}{% endfor %}|{{ (messages[:1] | length) }}", "user,assistant,user,|user|1234|1"},
		{"loop", "{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %}{{ loop.length }};{% endfor %}", "01F4;124;234;34L4;"},
		{"concat", "{{ bos_token + 'x' + eos_token }}{{ 'a' ~ 1 ~ messages|length }}{{ messages[0]['content'] + '!' }}", "<s>x</s>a14 Be kind. !"},
		{"trim and lstrip blocks", "{% for message in messages %}\n    {% if message.role == 'user' %}\n        U: {{ message.content }}\n    {% else %}\n        {{ message.role }}: {{ message.content }}\n    {% endif %}\n{% endfor %}\n{% if add_generation_prompt %}\n    A:\n{% endif %}", "        system:  Be kind. \n        U:   spaced  \n        assistant:  ok \n        U: Zoë ☕ </s> <s>\n\n    A:\n"},
		{"minus markers", "{%- for m in messages -%}\n  <{{- m.role -}}>\n  {{ m.content }}\n{%- endfor %}\n{{- eos_token }}", "<system>\n   Be kind. <user>\n    spaced  <assistant>\n   ok <user>\n  Zoë ☕ </s> <s>\n</s>"},
		{"filters", "{{ messages|map(attribute='role')|join(',') }}|{{ messages[0].content|upper }}|{{ messages|selectattr('role','equalto','user')|list|length }}|{{ 'a b'.split() }}|{{ messages[0].content.startswith('H') }}", "system,user,assistant,user| BE KIND. |2|['a', 'b']|False"},
		{"tojson keeps key order", "{{ messages[0] | tojson }}", `{"role": "system", "content": " Be kind. "}`},
		{"dict access", "{{ messages[0].get('name', 'anon') }}|{{ messages[0]['role'] }}|{% if 'content' in messages[0] %}C{% endif %}", "anon|system|C"},
		{"macro", "{% macro fmt(m) %}<{{ m.role }}>{% endmacro %}{% for m in messages %}{{ fmt(m) }}{% endfor %}", "<system><user><assistant><user>"},
		{"break", "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{{ m.role }}{% endfor %}", "system"},
		{"range", "{% for i in range(3) %}{{ i }}{% endfor %}|{{ range(1, 10, 4)|list }}|{{ range(3, 0, -1)|list }}|{{ range(0)|list }}", "012|[1, 5, 9]|[3, 2, 1]|[]"},
		{"indent", "{{ 'a\nb' | indent(2) }}|{{ 'a\nb' | indent(width=1, first=true) }}", "a\n  b| a\n b"},
		// ardanlabs/jinja v1.8.0 dropped these newlines (issue 25).
		{"text after a block tag", "{% for m in messages[:1] %}{% endfor %}{{ bos_token }}\n\nY", "<s>\n\nY"},
		{"none", "{{ none }}|{{ messages[0].name is defined }}", "None|False"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmpl, err := Parse(c.tmpl)
			require.NoError(t, err)
			out, err := tmpl.Render(conv, opts)
			require.NoError(t, err)
			assert.Equal(t, c.want, out)
		})
	}
}

func TestRaiseException(t *testing.T) {
	tmpl, err := Parse("{% if messages|length > 1 %}{{ raise_exception('too many: ' ~ messages|length) }}{% endif %}ok")
	require.NoError(t, err)

	out, err := tmpl.Render(conv[:1], opts)
	require.NoError(t, err)
	assert.Equal(t, "ok", out)

	_, err = tmpl.Render(conv, opts)
	require.ErrorIs(t, err, ErrRaised)
	assert.NotErrorIs(t, err, ErrRender)
	assert.NotErrorIs(t, err, ErrSyntax)
	assert.Equal(t, "chat: template raised an exception: too many: 4", err.Error())
	var re *RaisedError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "too many: 4", re.Message)
}

func TestRaiseInsideMacroAndExpression(t *testing.T) {
	// A raise nested in a macro call or a conditional expression must
	// still end rendering, as Python's exception does.
	for _, src := range []string{
		"{% macro m() %}{{ raise_exception('in macro') }}{% endmacro %}a{{ m() }}b",
		"a{{ 'x' if raise_exception('in macro') else 'y' }}b",
		"a{% set x = raise_exception('in macro') %}b",
	} {
		tmpl, err := Parse(src)
		require.NoError(t, err, src)
		out, err := tmpl.Render(conv, opts)
		require.ErrorIs(t, err, ErrRaised, src)
		assert.Contains(t, err.Error(), "in macro")
		assert.Empty(t, out)
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, src := range []string{
		"{% for m in messages %}no end",
		"{% if x %}",
		"{{ unclosed",
		"{% endfor %}",
		"{{ 1 + }}",
		"{% bogus %}",
		"{{ a[ }}",
		// Templates are single files: nothing may make the engine read the
		// file system.
		"{% include '/etc/passwd' %}",
		"{% import '/etc/passwd' as x %}",
		"{% extends '/etc/passwd' %}",
		"{% from '/etc/hostname' import a %}",
	} {
		tmpl, err := Parse(src)
		assert.ErrorIs(t, err, ErrSyntax, "%q", src)
		assert.NotErrorIs(t, err, ErrRender, "%q", src)
		assert.Nil(t, tmpl, "%q", src)
	}
}

func TestRenderErrors(t *testing.T) {
	// Calling something that is not a function fails at render time; it
	// must be ErrRender, not a raise, and not a panic.
	tmpl, err := Parse("{{ no_such_function() }}")
	require.NoError(t, err)
	_, err = tmpl.Render(conv, opts)
	require.ErrorIs(t, err, ErrRender)
	assert.NotErrorIs(t, err, ErrRaised)

	tmpl, err = Parse("{{ range(1, 2, 0) }}")
	require.NoError(t, err)
	_, err = tmpl.Render(conv, opts)
	require.ErrorIs(t, err, ErrRender)
	assert.Contains(t, err.Error(), "step must not be zero")
}

func TestEmptyConversation(t *testing.T) {
	tmpl, err := Parse("{% for m in messages %}x{% endfor %}{% if add_generation_prompt %}A{% endif %}")
	require.NoError(t, err)
	out, err := tmpl.Render(nil, opts)
	require.NoError(t, err)
	assert.Equal(t, "A", out)
	out, err = tmpl.Render(nil, Options{})
	require.NoError(t, err)
	assert.Equal(t, "", out)
}

func TestConcurrentRender(t *testing.T) {
	// One Template, many goroutines, each with its own conversation and its
	// own raise/range state; -race checks the engine shares nothing
	// mutable between renders.
	tmpl, err := Parse(Llama2 + "{% for i in range(2) %}{% endfor %}")
	require.NoError(t, err)
	const workers, rounds = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				content := fmt.Sprintf("worker %d round %d", w, r)
				msgs := []Message{{Role: "user", Content: content}}
				if r%3 == 0 {
					// Wrong order: must raise, in this goroutine only.
					msgs = []Message{{Role: "assistant", Content: content}}
					_, err := tmpl.Render(msgs, opts)
					if !errors.Is(err, ErrRaised) {
						errs <- fmt.Errorf("%s: want ErrRaised, got %v", content, err)
					}
					continue
				}
				out, err := tmpl.Render(msgs, opts)
				want := "<s>[INST] " + content + " [/INST]"
				if err != nil || out != want {
					errs <- fmt.Errorf("%s: got %q, %v", content, out, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestLlama2(t *testing.T) {
	// Independent of the fixtures, so the fallback template is checked
	// on every machine.
	tmpl, err := Parse(Llama2)
	require.NoError(t, err)
	msgs := []Message{
		{Role: "system", Content: "Sys."},
		{Role: "user", Content: " Q1 "},
		{Role: "assistant", Content: "A1"},
		{Role: "user", Content: "Q2"},
	}
	out, err := tmpl.Render(msgs, opts)
	require.NoError(t, err)
	// strip() applies to the system block and the message together, so
	// " Q1 " keeps its leading space (as in Hugging Face's rendering).
	assert.Equal(t, "<s>[INST] <<SYS>>\nSys.\n<</SYS>>\n\n Q1 [/INST] A1 </s><s>[INST] Q2 [/INST]", out)
	assert.False(t, strings.Contains(out, "[/INST]\n"), "no stray newlines")

	_, err = tmpl.Render(msgs[1:3:3][1:], opts)
	assert.ErrorIs(t, err, ErrRaised, "assistant first")
}

func TestLlama2Prompt(t *testing.T) {
	require.Equal(t, "[INST] <<SYS>>\nsys\n<</SYS>>\n\nhi [/INST]", Llama2Prompt("sys", "hi"))
	require.Equal(t, "[INST] hi [/INST]", Llama2Prompt("", "hi"))
}

// TestToolsAndRoles: tool calls, tool results and the tool and ipython
// roles reach the template as transformers passes them; tools keep their
// keys' order; strftime_now formats Options.Now. The expected text is
// Python's Jinja2 3.1's for the same inputs.
func TestToolsAndRoles(t *testing.T) {
	src := "{% for m in messages %}{{ m.role }}:" +
		"{% if m.tool_calls is defined %}{% for c in m.tool_calls %}{{ c.id }}/{{ c.type }}/{{ c.function.name }}({{ c.function.arguments | tojson }}){% endfor %}{% endif %}" +
		"{% if m.content is none %}-{% else %}{{ m.content }}{% endif %}" +
		"{% if m.tool_call_id is defined %}#{{ m.tool_call_id }}/{{ m.name }}{% endif %};{% endfor %}" +
		"{{ tools | tojson }}|{{ documents is defined }}|{{ strftime_now('%d %b %Y %A %-d') }}"
	tmpl, err := Parse(src)
	require.NoError(t, err)
	msgs := []Message{
		{Role: "user", Content: "Weather?"},
		{Role: "assistant", ToolCalls: []ToolCall{
			{ID: "c1", Type: "function", Function: FunctionCall{Name: "get", Arguments: map[string]any{"unit": "C", "city": "Paris", "days": 2.0}}},
			{ID: "c2", Type: "function", Function: FunctionCall{Name: "get", Arguments: `{"city": "Rome"}`}},
		}},
		{Role: "tool", Content: "18", ToolCallID: "c1", Name: "get"},
		{Role: "ipython", Content: "done"},
	}
	out, err := tmpl.Render(msgs, Options{
		Tools: []any{json.RawMessage(`{"type": "function", "function": {"name": "get", "parameters": {"z": 1.5, "a": [true, null]}}}`)},
		Now:   time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
	})
	require.NoError(t, err)
	want := `user:Weather?;` +
		`assistant:c1/function/get({"city": "Paris", "days": 2, "unit": "C"})c2/function/get("{\"city\": \"Rome\"}")-;` +
		`tool:18#c1/get;ipython:done;` +
		`[{"type": "function", "function": {"name": "get", "parameters": {"z": 1.5, "a": [true, null]}}}]|False|07 Dec 2026 Monday 7`
	assert.Equal(t, want, out)

	// Without tools, tools is undefined; documents are passed when given.
	tmpl, err = Parse("{{ tools is defined }}|{{ documents[0].title }}")
	require.NoError(t, err)
	out, err = tmpl.Render(nil, Options{Documents: []any{map[string]any{"title": "T"}}})
	require.NoError(t, err)
	assert.Equal(t, "False|T", out)

	_, err = tmpl.Render(nil, Options{Tools: []any{make(chan int)}})
	assert.ErrorIs(t, err, ErrRender)
	assert.ErrorContains(t, err, "tools: chan int is not a JSON value")
	_, err = tmpl.Render(nil, Options{Tools: []any{json.RawMessage(`{"a":`)}})
	assert.ErrorIs(t, err, ErrRender)

	// Python's str + dict is a TypeError (DeepSeek-R1's template needs the
	// arguments as a JSON string).
	tmpl, err = Parse("{{ 'args: ' + messages[0].tool_calls[0].function.arguments }}")
	require.NoError(t, err)
	_, err = tmpl.Render(msgs[1:2], Options{})
	assert.ErrorIs(t, err, ErrRender)
	assert.ErrorContains(t, err, `TypeError: can only concatenate str (not "dict") to str`)
}
