package tokenizer

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bpeVocabs are the byte-level BPE fixtures by the name decode-bpe.jsonl
// gives them.
var bpeVocabs = map[string]string{
	"llama3": "gguf/ggml-vocab-llama3.gguf",
	"qwen2":  "gguf/ggml-vocab-qwen2.gguf",
	"gpt2":   "gguf/ggml-vocab-gpt-2.gguf",
}

func TestBPEEncodeGolden(t *testing.T) {
	for name, file := range bpeVocabs {
		t.Run(name, func(t *testing.T) {
			tok := loadGGUFTokenizer(t, file)
			rows := readJSONL[spmCase](t, "golden/gguf/encode-"+name+".jsonl")
			failed := 0
			for _, c := range rows {
				got := encodeAs(tok, c.Text, c.AddSpecial, c.ParseSpecial)
				if !assert.Equal(t, c.IDs, got, "text %q add_special %v parse_special %v", c.Text, c.AddSpecial, c.ParseSpecial) {
					failed++
				}
			}
			assert.Zero(t, failed, "of %d rows", len(rows))
		})
	}
}

// decodeCase is a line of golden/gguf/decode-bpe.jsonl.
type decodeCase struct {
	Vocab          string `json:"vocab"`
	IDs            []int  `json:"ids"`
	UnparseSpecial bool   `json:"unparse_special"`
	Text           string `json:"text"`
	Hex            string `json:"hex"`
}

func TestBPEDetokenizeGolden(t *testing.T) {
	toks := map[string]*Tokenizer{}
	for name, file := range bpeVocabs {
		toks[name] = loadGGUFTokenizer(t, file)
	}
	rows := readJSONL[decodeCase](t, "golden/gguf/decode-bpe.jsonl")
	seen := map[string]int{}
	for _, c := range rows {
		tok := toks[c.Vocab]
		require.NotNil(t, tok, "vocab %q", c.Vocab)
		seen[c.Vocab]++
		want := []byte(c.Text)
		if c.Hex != "" {
			var err error
			want, err = hex.DecodeString(c.Hex)
			require.NoError(t, err)
		}
		got := tok.Detokenize(nil, c.IDs, c.UnparseSpecial)
		assert.Equal(t, fmt.Sprintf("%q", want), fmt.Sprintf("%q", got), "%s ids %v unparse_special %v", c.Vocab, c.IDs, c.UnparseSpecial)
	}
	assert.Len(t, seen, 3)
}
