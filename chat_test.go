package main

import (
	"context"
	"strings"
	"testing"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
	"github.com/stretchr/testify/require"
)

// stories260K opens the trained stories260K model and its tokenizer.
func stories260K(t *testing.T) (*model.Model, *tokenizer.Tokenizer) {
	m, err := model.Open(fixture(t, "stories260K.bin"))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	tok, err := tokenizer.Load(fixture(t, "tok512.bin"), 512)
	require.NoError(t, err)
	return m, tok
}

// newSession opens a session on m, closed when the test ends.
func newSession(t *testing.T, m *model.Model, threads int) *model.Session {
	s, err := m.NewSession(model.SessionOptions{Threads: threads})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func TestChatEndsAtEndOfInput(t *testing.T) {
	m, tok := stories260K(t)
	s := newSession(t, m, 1)
	var out strings.Builder
	// No system prompt given: it is asked for; the input ends after it.
	err := chatLoop(context.Background(), s, tok, sample.New(512, 0, 0, 1), chatOptions{}, strings.NewReader("be brief\n"), &out)
	require.NoError(t, err)
	require.Equal(t, "Enter system prompt (optional): User: \n", out.String())
}

func TestChatTakesLongLines(t *testing.T) {
	m, tok := stories260K(t)
	system := ""
	long := strings.Repeat("a b ", 150) + "cat"
	full := len(tok.Encode(chat.Llama2Prompt("", long), true, false))
	require.Greater(t, full, len(tok.Encode(chat.Llama2Prompt("", long[:511]), true, false)))
	run := func(steps int) string {
		var out strings.Builder
		err := chatLoop(context.Background(), newSession(t, m, 1), tok, sample.New(512, 0, 0, 1),
			chatOptions{System: &system, Steps: steps}, strings.NewReader(long+"\n"), &out)
		require.NoError(t, err)
		return out.String()
	}
	// The whole line is the prompt: the assistant's first piece comes out
	// of the last prompt position, not before.
	require.Equal(t, "User: Assistant: \n", run(full-1))
	require.Greater(t, len(run(full)), len("User: Assistant: \n"))
}

// zephyr is TinyLlama-Chat's template (as in the goldens).
const zephyr = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"

// TestChatTurns: each turn feeds what the conversation's rendering adds to
// the turns before it, special tokens of the template parsed, the user's not.
func TestChatTurns(t *testing.T) {
	m, err := model.Open(fixture(t, "gguf/rand-gqa-32k-f32.gguf"))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
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
