package server

import "github.com/llama2-go/llama2/model"

// Log probabilities in OpenAI's shapes: a chat choice's logprobs.content
// entries, and the legacy completions' parallel lists.

// tokenText is a token's text as the logprobs report it; a byte token of
// an incomplete UTF-8 character is its byte, which JSON writes as U+FFFD
// (the bytes field of a chat entry has the real bytes).
func (s *Server) tokenText(id int) string { return string(s.tok.TokenBytes(id)) }

func byteList(s string) []int {
	b := make([]int, len(s))
	for i := range len(s) {
		b[i] = int(s[i])
	}
	return b
}

// chatLogprob is the logprobs.content entry of a sampled token.
func (s *Server) chatLogprob(t *model.Token) tokenLogprob {
	text := s.tokenText(t.ID)
	e := tokenLogprob{Token: text, Logprob: t.Logprob, Bytes: byteList(text), TopLogprobs: []topLogprob{}}
	for _, alt := range t.TopLogprobs {
		at := s.tokenText(alt.ID)
		e.TopLogprobs = append(e.TopLogprobs, topLogprob{Token: at, Logprob: alt.Logprob, Bytes: byteList(at)})
	}
	return e
}

// addCompletionLogprob appends a sampled token to the legacy lists; offset
// is where the token's text starts in the completion. lp nil (no logprobs
// asked) or t nil (a piece of held-back text) add nothing.
func (s *Server) addCompletionLogprob(lp *completionLogprobs, t *model.Token, offset, top int) {
	if lp == nil || t == nil {
		return
	}
	lp.Tokens = append(lp.Tokens, s.tokenText(t.ID))
	lp.TokenLogprobs = append(lp.TokenLogprobs, t.Logprob)
	lp.TextOffset = append(lp.TextOffset, offset)
	if top > 0 {
		m := make(map[string]float32, len(t.TopLogprobs))
		for _, alt := range t.TopLogprobs {
			if _, dup := m[s.tokenText(alt.ID)]; !dup { // two ids may spell the same text
				m[s.tokenText(alt.ID)] = alt.Logprob
			}
		}
		lp.TopLogprobs = append(lp.TopLogprobs, m)
	}
}
