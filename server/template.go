package server

// Chat templates in the server: the file's Jinja template (or
// -chat-template-file's) renders /v1/chat/completions and /apply-template.

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/model"
)

// serverTemplate chooses the server's chat template: Options.ChatTemplate
// when given, else a GGUF model's own (Llama 2's when it has none). For a
// llama2.c checkpoint without one it returns nil: chats are rendered as
// Meta's chat_completion does (renderChat), and /apply-template shows the
// Llama 2 template's rendering.
func serverTemplate(m *model.Model, src string) (*chat.Template, error) {
	if src != "" {
		t, err := chat.Parse(src)
		if err != nil {
			return nil, fmt.Errorf("chat template: %w", err)
		}
		return t, nil
	}
	if !m.Config.GGUF {
		return nil, nil
	}
	return m.Template()
}

// templateOptions are the template's inputs other than the messages.
func (s *Server) templateOptions(addGenerationPrompt bool) chat.Options {
	return chat.Options{
		AddGenerationPrompt: addGenerationPrompt,
		BOSToken:            s.tok.Piece(s.tok.BOS()),
		EOSToken:            s.tok.Piece(s.tok.EOS()),
	}
}

// templateMessages reads the messages' roles and texts for a template,
// which decides itself which orders of roles it accepts. protect marks the
// special-token texts in them (model.Tokenizer.ProtectSpecial) when the
// rendering is to be encoded.
func (s *Server) templateMessages(msgs []chatMessage, protect bool) ([]chat.Message, *requestError) {
	if len(msgs) == 0 {
		return nil, badRequest("missing_required_parameter", "messages", "messages is required and must not be empty")
	}
	out := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		text, err := messageText(i, m.Content)
		if err != nil {
			return nil, err
		}
		if m.Role == "" {
			return nil, badRequest("missing_required_parameter", fmt.Sprintf("messages[%d].role", i), "messages[%d].role is required", i)
		}
		if protect {
			text = s.tok.ProtectSpecial(text)
		}
		out[i] = chat.Message{Role: m.Role, Content: text}
	}
	return out, nil
}

// renderTemplate renders msgs with the server's template (Llama 2's for a
// llama2.c checkpoint without one). A template that raises an exception
// (roles out of order, say) is the client's error.
func (s *Server) renderTemplate(msgs []chatMessage, addGenerationPrompt, protect bool) (string, *requestError) {
	t := s.tmpl
	if t == nil { // a llama2.c checkpoint: Llama 2's template
		var err error
		if t, err = s.model.Template(); err != nil {
			return "", badRequest("invalid_value", "messages", "the chat template failed: %v", err)
		}
	}
	cms, rerr := s.templateMessages(msgs, protect)
	if rerr != nil {
		return "", rerr
	}
	text, err := t.Render(cms, s.templateOptions(addGenerationPrompt))
	if err != nil {
		if errors.Is(err, chat.ErrRaised) {
			return "", badRequest("invalid_value", "messages", "%v", err)
		}
		return "", badRequest("invalid_value", "messages", "the chat template failed: %v", err)
	}
	return text, nil
}

// renderChatTokens renders a chat request's messages into prompt tokens
// through the chat template, parsing the special tokens (<s>, </s>) that
// the template writes but not those in the messages: a user's "</s>" stays
// text. Without a template (llama2.c checkpoints) renderChat does it in Go.
func (s *Server) renderChatTokens(msgs []chatMessage) ([]int, *requestError) {
	if s.tmpl == nil {
		return s.renderChat(msgs)
	}
	text, err := s.renderTemplate(msgs, true, true)
	if err != nil {
		return nil, err
	}
	bos := s.tok.AddBOS() && !strings.HasPrefix(text, s.tok.Piece(s.tok.BOS()))
	return s.tok.EncodeRendered(text, bos), nil
}

// applyTemplateRequest is POST /apply-template's body, as llama.cpp's
// server takes it.
type applyTemplateRequest struct {
	Messages            []chatMessage `json:"messages"`
	AddGenerationPrompt *bool         `json:"add_generation_prompt"`
}

// handleApplyTemplate answers {"prompt": rendered text} without generating.
func (s *Server) handleApplyTemplate(w http.ResponseWriter, r *http.Request) {
	var req applyTemplateRequest
	if err := s.readBody(w, r, func() *requestError { return decodeBody(w, r, &req) }); err != nil {
		writeRequestError(w, err)
		return
	}
	addGen := req.AddGenerationPrompt == nil || *req.AddGenerationPrompt
	text, err := s.renderTemplate(req.Messages, addGen, false)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"prompt": text})
}
