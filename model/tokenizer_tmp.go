package model

// Temporary stand-in until the tokenizer branch lands.

const (
	BOS = 1
	EOS = 2
)

type Tokenizer struct{}

func LoadTokenizer(path string, vocabSize int) (*Tokenizer, error) { panic("tmp") }
func (t *Tokenizer) Encode(text string, bos, eos bool) []int     { panic("tmp") }
func (t *Tokenizer) NewTextDecoder() *TextDecoder                { panic("tmp") }

type TextDecoder struct{}

func (d *TextDecoder) Append(dst []byte, prev, token int) []byte { panic("tmp") }
func (d *TextDecoder) Flush(dst []byte) []byte                   { panic("tmp") }
