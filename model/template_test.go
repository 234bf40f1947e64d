package model

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/chat"
)

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
