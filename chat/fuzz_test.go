package chat

import (
	"errors"
	"testing"
	"time"
)

// FuzzRender feeds arbitrary template sources and message contents to
// Parse and Render: they must return a result or one of the package's
// errors, never panic, crash or hang. Every construct is allowed: the
// limits bound macros, repetition, namespaces and indent too.
func FuzzRender(f *testing.F) {
	seeds := []string{
		Llama2,
		"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
		"{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
		"{{ bos_token }}{% for m in messages[1:] %}{{ m.content.strip() | trim }}{% if not loop.last %},{% endif %}{% endfor %}",
		"{% if tools is defined %}{{ tools }}{% endif %}{{ messages[-1]['content'][::-1] }}{{ messages|length }}",
		"{% for i in range(3) %}{{ i }}{% endfor %}{{ raise_exception(messages[0].content) }}",
		"{{ messages | tojson }}{{ messages[0].content.split(' ') }}",
		"{%- if x -%}\n  {{- y -}}\n{%- endif -%}",
		"{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(0) }}",
		"{% set ns = namespace(s='a') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|indent(3) }}",
		"{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l|tojson(indent=2) }}",
		"{{ ('%5d' * 3) % (1, 2, 3) }}{{ 'x' * 7 }}{{ '{}'.format(1) }}{{ [1,2]|join('-') }}",
	}
	for i, s := range seeds {
		f.Add(s, []string{"Hello!", "  spaced  ", "Zoë ☕ </s> <s>", "{{ x }}"}[i%4], i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, src, content string, addGen bool) {
		if len(src) > 4096 || len(content) > 4096 {
			return
		}
		tmpl, err := Parse(src)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse error %v is not ErrSyntax", err)
			}
			return
		}
		msgs := []Message{{Role: "system", Content: content}, {Role: "user", Content: content}}
		// Tight limits keep every input fast.
		lim := Limits{MaxSteps: 200_000, MaxMemoryBytes: 16 << 20, Timeout: 2 * time.Second}
		out, err := tmpl.Render(msgs, Options{AddGenerationPrompt: addGen, BOSToken: "<s>", EOSToken: "</s>", Limits: lim})
		switch {
		case err == nil:
			if len(out) > DefaultLimits.MaxOutputBytes {
				t.Fatalf("output of %d bytes passed the cap", len(out))
			}
		case errors.Is(err, ErrRaised) == errors.Is(err, ErrRender):
			t.Fatalf("Render error %v must be exactly one of ErrRaised and ErrRender", err)
		case out != "":
			t.Fatalf("Render returned output %q with error %v", out, err)
		}
	})
}
