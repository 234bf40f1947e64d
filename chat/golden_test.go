package chat

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goldenCase is one line of chat-templates.jsonl: a template rendered by
// Hugging Face's apply_chat_template, with either its exact output or the
// message its raise_exception call gave.
type goldenCase struct {
	TemplateName        string    `json:"template_name"`
	Template            string    `json:"template"`
	BOSToken            string    `json:"bos_token"`
	EOSToken            string    `json:"eos_token"`
	Messages            []Message `json:"messages"`
	AddGenerationPrompt bool      `json:"add_generation_prompt"`
	Rendered            *string   `json:"rendered"`
	Error               *string   `json:"error"`
}

func loadGoldens(tb testing.TB) []goldenCase {
	tb.Helper()
	f, err := os.Open(fixture(tb, "golden/gguf/chat-templates.jsonl"))
	require.NoError(tb, err)
	defer f.Close()
	var cases []goldenCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var c goldenCase
		require.NoError(tb, json.Unmarshal(sc.Bytes(), &c), "line %d", len(cases)+1)
		require.True(tb, (c.Rendered == nil) != (c.Error == nil), "line %d needs exactly one of rendered and error", len(cases)+1)
		cases = append(cases, c)
	}
	require.NoError(tb, sc.Err())
	require.NotEmpty(tb, cases)
	return cases
}

// checkGolden renders c with t and compares with the expected output or
// raised message.
func checkGolden(t *testing.T, tmpl *Template, c goldenCase) {
	t.Helper()
	out, err := tmpl.Render(c.Messages, Options{AddGenerationPrompt: c.AddGenerationPrompt, BOSToken: c.BOSToken, EOSToken: c.EOSToken})
	if c.Rendered != nil {
		require.NoError(t, err)
		assert.Equal(t, *c.Rendered, out)
		return
	}
	require.ErrorIs(t, err, ErrRaised)
	assert.NotErrorIs(t, err, ErrRender)
	assert.Contains(t, err.Error(), *c.Error)
	var re *RaisedError
	require.True(t, errors.As(err, &re))
	assert.Equal(t, *c.Error, re.Message, "the template's message, verbatim")
	assert.Empty(t, out)
}

func TestGoldens(t *testing.T) {
	cases := loadGoldens(t)
	raised := 0
	for i, c := range cases {
		if c.Error != nil {
			raised++
		}
		t.Run(c.TemplateName, func(t *testing.T) {
			tmpl, err := Parse(c.Template)
			require.NoError(t, err, "line %d", i+1)
			assert.Equal(t, c.Template, tmpl.Source())
			checkGolden(t, tmpl, c)
		})
	}
	// Both kinds of expectation must really be exercised.
	assert.NotZero(t, raised)
	assert.NotEqual(t, len(cases), raised)
}

func TestLlama2MatchesGoldens(t *testing.T) {
	tmpl, err := Parse(Llama2)
	require.NoError(t, err)
	n := 0
	for _, c := range loadGoldens(t) {
		if c.TemplateName != "llama2" {
			continue
		}
		n++
		assert.Equal(t, strings.TrimSpace(c.Template), strings.TrimSpace(Llama2), "the goldens' llama2 template")
		checkGolden(t, tmpl, c)
	}
	assert.NotZero(t, n, "no llama2 cases in the goldens")
}
