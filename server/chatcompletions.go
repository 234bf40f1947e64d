package server

// POST /v1/chat/completions: the answer as one message or a stream of
// deltas, its logprobs, and tool calls read back from the text.

import (
	"bytes"
	"net/http"
	"strings"
	"time"
)

// trimFirstSpace drops the space that starts an assistant's answer: the
// first piece after "[/INST]" is usually a word with SentencePiece's leading
// space, which Llama 2's reference decoder (sentencepiece) drops as well.
func trimFirstSpace(onText func(piece) error) func(piece) error {
	first := true
	return func(p piece) error {
		if first && len(p.text) > 0 {
			first = false
			if p.text = bytes.TrimPrefix(p.text, []byte(" ")); len(p.text) == 0 && p.tok == nil {
				return nil
			}
		}
		return onText(p)
	}
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	g, ok := s.admitRequest(w, r, s.parseChat)
	if !ok {
		return
	}
	info := infoFrom(r.Context())
	id, created := newID("chatcmpl-"), time.Now().Unix()
	// A grammar's text is kept exactly as it matched.
	wrap := trimFirstSpace
	if g.grammar != nil {
		wrap = func(f func(piece) error) func(piece) error { return f }
	}
	logprobs := func(entries []tokenLogprob) *chatLogprobs {
		if !g.logprobs {
			return nil
		}
		if entries == nil {
			entries = []tokenLogprob{}
		}
		return &chatLogprobs{Content: entries}
	}
	if !g.stream {
		var text strings.Builder
		var entries []tokenLogprob
		res, err := s.generate(r.Context(), g, nil, wrap(func(p piece) error {
			text.Write(p.text)
			if p.tok != nil {
				entries = append(entries, s.chatLogprob(p.tok))
			}
			return nil
		}))
		info.completionTokens, info.cachedTokens, info.finish = res.usage.CompletionTokens, res.usage.CachedTokens, res.finish()
		if err != nil {
			s.failed(w, r, nil, err)
			return
		}
		finish := res.finish()
		msg := &chatMessageOut{Role: "assistant"}
		content := text.String()
		if g.tools != nil {
			if calls, ok := g.tools.parseCalls(content); ok {
				msg.ToolCalls, finish = calls, "tool_calls"
			}
		}
		if msg.ToolCalls == nil {
			msg.Content = &content
		}
		info.finish = finish
		s.finishJSON(w, chatResponse{ID: id, Object: "chat.completion", Created: created, Model: s.modelID,
			Choices: []chatChoice{{Index: 0, Message: msg, Logprobs: logprobs(entries), FinishReason: &finish}},
			Usage:   s.usage(g, res)})
		return
	}
	chunk := func(delta chatDelta, lp *chatLogprobs, finish *string) chatResponse {
		return chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.modelID,
			Choices: []chatChoice{{Index: 0, Delta: &delta, Logprobs: lp, FinishReason: finish}}}
	}
	e := s.newSSE(w)
	empty := ""
	sendText := func(text string, entries []tokenLogprob) error {
		return e.send(chunk(chatDelta{Content: &text}, logprobs(entries), nil))
	}
	// With tools, an answer that may be a call is held until it is known.
	holding := g.tools != nil
	var held strings.Builder
	var heldEntries []tokenLogprob
	res, err := s.generate(r.Context(), g, func() error {
		e.start()
		return e.send(chunk(chatDelta{Role: "assistant", Content: &empty}, nil, nil))
	}, wrap(func(p piece) error {
		var entries []tokenLogprob
		if p.tok != nil {
			entries = []tokenLogprob{s.chatLogprob(p.tok)}
		}
		if holding {
			held.Write(p.text)
			heldEntries = append(heldEntries, entries...)
			if g.tools.forced != nil || g.tools.mayBeCall(held.String()) {
				return nil
			}
			holding = false
			return sendText(held.String(), heldEntries)
		}
		return sendText(string(p.text), entries)
	}))
	info.completionTokens, info.cachedTokens, info.finish = res.usage.CompletionTokens, res.usage.CachedTokens, res.finish()
	if err != nil {
		s.failed(w, r, e, err)
		return
	}
	finish := res.finish()
	if holding {
		if calls, ok := g.tools.parseCalls(held.String()); ok {
			finish = "tool_calls"
			for i, c := range calls {
				index := i
				head := toolCall{Index: &index, ID: c.ID, Type: c.Type, Function: functionCall{Name: c.Function.Name}}
				if e.send(chunk(chatDelta{ToolCalls: []toolCall{head}}, logprobs(heldEntries), nil)) != nil {
					return
				}
				heldEntries = nil
				args := toolCall{Index: &index, Function: functionCall{Arguments: c.Function.Arguments}}
				if e.send(chunk(chatDelta{ToolCalls: []toolCall{args}}, nil, nil)) != nil {
					return
				}
			}
		} else if held.Len() > 0 || heldEntries != nil {
			if sendText(held.String(), heldEntries) != nil {
				return
			}
		}
	}
	info.finish = finish
	if e.send(chunk(chatDelta{}, nil, &finish)) != nil {
		return
	}
	if g.usage {
		last := chunk(chatDelta{}, nil, nil)
		last.Choices, last.Usage = []chatChoice{}, s.usage(g, res)
		if e.send(last) != nil {
			return
		}
	}
	e.send(nil)
}
