package server

// Chat templates in the server: the file's Jinja template (or
// -chat-template-file's) renders /v1/chat/completions and /apply-template.

import (
	"context"
	"encoding/json"
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
func (s *Server) templateOptions(addGenerationPrompt bool, tools []json.RawMessage) chat.Options {
	o := chat.Options{
		AddGenerationPrompt: addGenerationPrompt,
		BOSToken:            s.tok.Piece(s.tok.BOS()),
		EOSToken:            s.tok.Piece(s.tok.EOS()),
		Limits:              s.opts.TemplateLimits,
	}
	if tools != nil {
		o.Tools = make([]any, len(tools))
		for i, t := range tools {
			o.Tools[i] = t // raw JSON: |tojson prints the keys in the client's order
		}
	}
	return o
}

// chatToolCall is one of an assistant message's tool_calls, as OpenAI's
// API sends them: arguments is a JSON string, or (Hugging Face's
// convention) an object.
type chatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// templateMessages reads the messages' roles, texts and tool calls for a
// template, which decides itself which orders of roles it accepts.
// protect marks the special-token texts in them
// (model.Tokenizer.ProtectSpecial) when the rendering is to be encoded.
func (s *Server) templateMessages(msgs []chatMessage, protect bool) ([]chat.Message, *requestError) {
	if len(msgs) == 0 {
		return nil, badRequest("missing_required_parameter", "messages", "messages is required and must not be empty")
	}
	out := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		if m.Role == "" {
			return nil, badRequest("missing_required_parameter", fmt.Sprintf("messages[%d].role", i), "messages[%d].role is required", i)
		}
		var text string
		// An assistant's tool calls come with a null content.
		if len(m.ToolCalls) == 0 || !isNull(m.Content) {
			var err *requestError
			if text, err = messageText(i, m.Content); err != nil {
				return nil, err
			}
		}
		if protect {
			text = s.tok.ProtectSpecial(text)
		}
		cm := chat.Message{Role: m.Role, Content: text, ToolCallID: m.ToolCallID}
		if m.Name != nil {
			cm.Name = *m.Name
		}
		for j, c := range m.ToolCalls {
			call := chat.ToolCall{ID: c.ID, Type: c.Type, Function: chat.FunctionCall{Name: c.Function.Name}}
			switch args := c.Function.Arguments; {
			case isNull(args):
			case args[0] == '"':
				var str string
				if err := json.Unmarshal(args, &str); err != nil {
					return nil, badRequest("invalid_value", fmt.Sprintf("messages[%d].tool_calls[%d].function.arguments", i, j), "%v", err)
				}
				call.Function.Arguments = str
			default:
				call.Function.Arguments = args // an object, its keys in order
			}
			cm.ToolCalls = append(cm.ToolCalls, call)
		}
		out[i] = cm
	}
	return out, nil
}

// renderTemplate renders msgs with the server's template (Llama 2's for a
// llama2.c checkpoint without one), within the server's template limits
// and until ctx (the request's) ends. A template that raises an exception
// (roles out of order, say) or breaks a limit fails the request with a
// 400; the server carries on.
func (s *Server) renderTemplate(ctx context.Context, msgs []chatMessage, tools []json.RawMessage, addGenerationPrompt, protect bool) (string, *requestError) {
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
	text, err := t.RenderContext(ctx, cms, s.templateOptions(addGenerationPrompt, tools))
	if err != nil {
		switch {
		case errors.Is(err, chat.ErrRaised):
			return "", badRequest("invalid_value", "messages", "%v", err)
		case errors.Is(err, chat.ErrLimit):
			return "", badRequest("invalid_value", "messages", "the chat template failed on these messages: %v", err)
		}
		return "", badRequest("invalid_value", "messages", "the chat template failed: %v", err)
	}
	return text, nil
}

// renderChatTokens renders a chat request's messages into prompt tokens
// through the chat template, parsing the special tokens (<s>, </s>) that
// the template writes but not those in the messages: a user's "</s>" stays
// text. Without a template (llama2.c checkpoints) renderChat does it in Go.
func (s *Server) renderChatTokens(ctx context.Context, msgs []chatMessage, tools []json.RawMessage) ([]int, *requestError) {
	if s.tmpl == nil {
		return s.renderChat(msgs)
	}
	text, err := s.renderTemplate(ctx, msgs, tools, true, true)
	if err != nil {
		return nil, err
	}
	bos := s.tok.AddBOS() && !strings.HasPrefix(text, s.tok.Piece(s.tok.BOS()))
	return s.tok.EncodeRendered(text, bos), nil
}

// applyTemplateRequest is POST /apply-template's body, as llama.cpp's
// server takes it, with OpenAI's tools.
type applyTemplateRequest struct {
	Messages            []chatMessage     `json:"messages"`
	Tools               []json.RawMessage `json:"tools"`
	AddGenerationPrompt *bool             `json:"add_generation_prompt"`
}

// handleApplyTemplate answers {"prompt": rendered text} without generating.
func (s *Server) handleApplyTemplate(w http.ResponseWriter, r *http.Request) {
	var req applyTemplateRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeRequestError(w, err)
		return
	}
	addGen := req.AddGenerationPrompt == nil || *req.AddGenerationPrompt
	text, err := s.renderTemplate(r.Context(), req.Messages, req.Tools, addGen, false)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"prompt": text})
}
