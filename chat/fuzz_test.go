package chat

import (
	"errors"
	"strings"
	"testing"
)

// FuzzRender feeds arbitrary template sources and message contents to
// Parse and Render: they must return a result or one of the package's
// errors, never panic. Sources using the constructs the engine cannot
// bound (see the package doc: string repetition with *, macros, namespace
// doubling) are skipped, or the fuzzer would just rediscover that a
// terabyte allocation ends the process.
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
	}
	for i, s := range seeds {
		f.Add(s, []string{"Hello!", "  spaced  ", "Zoë ☕ </s> <s>", "{{ x }}"}[i%4], i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, src, content string, addGen bool) {
		if len(src) > 4096 || len(content) > 4096 {
			return
		}
		if strings.Contains(src, "*") || strings.Contains(src, "macro") || strings.Contains(src, "namespace") ||
			strings.Contains(src, "indent") {
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
		out, err := tmpl.Render(msgs, Options{AddGenerationPrompt: addGen, BOSToken: "<s>", EOSToken: "</s>"})
		switch {
		case err == nil:
			if len(out) > MaxOutputBytes {
				t.Fatalf("output of %d bytes passed the cap", len(out))
			}
		case errors.Is(err, ErrRaised) == errors.Is(err, ErrRender):
			t.Fatalf("Render error %v must be exactly one of ErrRaised and ErrRender", err)
		case out != "":
			t.Fatalf("Render returned output %q with error %v", out, err)
		}
	})
}
