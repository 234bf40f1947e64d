package model

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/chat"
)

// zephyr is TinyLlama-Chat's template (as in the goldens).
const zephyr = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"

// TestChatTurns: each turn feeds what the conversation's rendering adds to
// the turns before it, special tokens of the template parsed, the user's not.
func TestChatTurns(t *testing.T) {
	m := openModel(t, fixture(t, "gguf/rand-gqa-32k-f32.gguf"))
	tok := m.Tokenizer()
	tmpl, err := chat.Parse(zephyr)
	require.NoError(t, err)
	turns := newChatTurns(tmpl, tok)

	first, err := turns.user("Be kind.", "Hi </s>")
	require.NoError(t, err)
	require.Equal(t, tok.BOS(), first[0])
	var text string
	for i := 1; i < len(first); i++ {
		text += tok.Decode(first[i-1], first[i])
	}
	// Control tokens print as nothing: the user's </s> is the only one
	// left. (Text after a special token gets its own dummy-prefix space, as
	// llama.cpp encodes it.)
	require.Equal(t, "<|system|>\nBe kind. \n<|user|>\nHi </s> \n<|assistant|>\n", text)
	require.Equal(t, 2, count(first, tok.EOS()), "the template's two </s>, not the user's: %v", first)

	require.NoError(t, turns.assistant("Hello"))
	second, err := turns.user("", "Bye")
	require.NoError(t, err)
	// The reply and its </s> are in the cache already: the second turn
	// starts after them.
	require.Equal(t, tok.EncodeSpecial("<|user|>\nBye</s>\n<|assistant|>\n", false, false), second)
}

func count(xs []int, x int) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// TestModelTemplate: the file's template, else Llama 2's, parsed once.
func TestModelTemplate(t *testing.T) {
	gm := openModel(t, fixture(t, "gguf/randk-f32.gguf"))
	tmpl, err := gm.Template()
	require.NoError(t, err)
	require.NotEmpty(t, gm.ChatTemplate())
	require.Equal(t, gm.ChatTemplate(), tmpl.Source())
	again, err := gm.Template()
	require.NoError(t, err)
	require.Same(t, tmpl, again)

	lm := openModel(t, fixture(t, "stories260K.bin"))
	tmpl, err = lm.Template()
	require.NoError(t, err)
	require.Equal(t, chat.Llama2, tmpl.Source())
}
