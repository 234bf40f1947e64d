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
// tools hold each tool's JSON as the client sent it (json.RawMessage), so
// |tojson prints its keys in the client's order, as transformers does.
func (s *Server) templateOptions(addGenerationPrompt bool, tools []any) chat.Options {
	return chat.Options{
		AddGenerationPrompt: addGenerationPrompt,
		BOSToken:            s.tok.Piece(s.tok.BOS()),
		EOSToken:            s.tok.Piece(s.tok.EOS()),
		Tools:               tools,
		Limits:              s.opts.TemplateLimits,
	}
}

// templateMessages reads the messages' roles, texts and tool calls for a
// template, which decides itself which orders of roles it accepts. protect
// marks the special-token texts in them (model.Tokenizer.ProtectSpecial)
// when the rendering is to be encoded.
//
// An assistant's tool-call arguments reach the template as a JSON object
// when stringArgs is false (Hugging Face's convention, which templates
// that index or tojson them need: Llama 3.1, Qwen2.5) and as the JSON text
// when it is true (OpenAI's wire form, which DeepSeek-R1's template
// concatenates).
func (s *Server) templateMessages(msgs []chatMessage, protect, stringArgs bool) ([]chat.Message, *requestError) {
	if len(msgs) == 0 {
		return nil, badRequest("missing_required_parameter", "messages", "messages is required and must not be empty")
	}
	out := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		text, err := messageText(i, m.Content, m.Role == "assistant" && len(m.ToolCalls) > 0)
		if err != nil {
			return nil, err
		}
		if m.Role == "" {
			return nil, badRequest("missing_required_parameter", fmt.Sprintf("messages[%d].role", i), "messages[%d].role is required", i)
		}
		if protect {
			text = s.tok.ProtectSpecial(text)
		}
		cm := chat.Message{Role: m.Role, Content: text}
		if m.Name != nil {
			cm.Name = *m.Name
		}
		if m.ToolCallID != nil {
			cm.ToolCallID = *m.ToolCallID
		}
		if m.Role == "tool" && cm.ToolCallID == "" {
			return nil, badRequest("missing_required_parameter", fmt.Sprintf("messages[%d].tool_call_id", i), "a tool message needs tool_call_id")
		}
		for j, c := range m.ToolCalls {
			param := fmt.Sprintf("messages[%d].tool_calls[%d]", i, j)
			if m.Role != "assistant" {
				return nil, badRequest("invalid_value", param, "only assistant messages carry tool_calls")
			}
			if c.Function.Name == "" {
				return nil, badRequest("missing_required_parameter", param+".function.name", "%s.function.name is required", param)
			}
			args, err := toolArguments(c.Function.Arguments, stringArgs)
			if err != nil {
				return nil, badRequest("invalid_value", param+".function.arguments", "%v", err)
			}
			cm.ToolCalls = append(cm.ToolCalls, chat.ToolCall{ID: c.ID, Type: "function",
				Function: chat.FunctionCall{Name: c.Function.Name, Arguments: args}})
		}
		out[i] = cm
	}
	return out, nil
}

// llama2Roles is the one role-order policy of Llama 2's chat format, which
// /v1/chat/completions and /apply-template share for llama2.c checkpoints:
// an optional system (or developer) message first, then user and
// assistant messages alternating, starting with user; a chat to answer
// (generating) ends with a user message. No other roles.
func llama2Roles(msgs []chatMessage, generating bool) *requestError {
	if len(msgs) == 0 {
		return badRequest("missing_required_parameter", "messages", "messages is required and must not be empty")
	}
	turns := 0
	for i, m := range msgs {
		param := fmt.Sprintf("messages[%d].role", i)
		switch role := m.Role; {
		case (role == "system" || role == "developer") && i == 0:
			continue
		case role == "system" || role == "developer":
			return badRequest("invalid_value", param, "a %s message may only come first", role)
		case role != "user" && role != "assistant":
			return badRequest("invalid_value", param, "unsupported role %q: Llama 2's chat format has system, user and assistant", role)
		case len(m.ToolCalls) > 0:
			return badRequest("invalid_value", fmt.Sprintf("messages[%d].tool_calls", i), "Llama 2's chat format has no tool calls")
		}
		want := "user"
		if turns%2 == 1 {
			want = "assistant"
		}
		if m.Role != want {
			return badRequest("invalid_value", param,
				"expected a %s message: after an optional system message, user and assistant messages alternate, starting with user", want)
		}
		turns++
	}
	if generating && turns%2 == 0 {
		return badRequest("invalid_value", "messages", "the last message must be from the user")
	}
	return nil
}

// renderTemplate renders msgs with the server's template (Llama 2's for a
// llama2.c checkpoint without one, under llama2Roles). A template that
// raises an exception (roles out of order, say) is the client's error.
func (s *Server) renderTemplate(ctx context.Context, msgs []chatMessage, addGenerationPrompt, protect bool, tools []any) (string, *requestError) {
	t := s.tmpl
	if t == nil { // a llama2.c checkpoint: Llama 2's template
		if err := llama2Roles(msgs, addGenerationPrompt); err != nil {
			return "", err
		}
		var err error
		if t, err = s.model.Template(); err != nil {
			return "", badRequest("invalid_value", "messages", "the chat template failed: %v", err)
		}
	}
	opts := s.templateOptions(addGenerationPrompt, tools)
	var text string
	var err error
	// Tool-call arguments as objects first; a template that fails on them
	// (not by raise_exception or a limit) gets them as JSON text.
	for _, stringArgs := range []bool{false, true} {
		cms, rerr := s.templateMessages(msgs, protect, stringArgs)
		if rerr != nil {
			return "", rerr
		}
		if s.tmpl == nil && cms[0].Role == "developer" {
			cms[0].Role = "system" // as renderChat takes it
		}
		text, err = t.RenderContext(ctx, cms, opts)
		if err == nil || errors.Is(err, chat.ErrRaised) || errors.Is(err, chat.ErrLimit) || !hasToolCalls(msgs) {
			break
		}
	}
	switch {
	case err == nil:
		return text, nil
	case errors.Is(err, chat.ErrRaised):
		return "", badRequest("invalid_value", "messages", "%v", err)
	case errors.Is(err, chat.ErrLimit):
		return "", badRequest("invalid_value", "messages", "the chat template failed on these messages: %v", err)
	}
	return "", badRequest("invalid_value", "messages", "the chat template failed: %v", err)
}

// hasToolCalls reports whether an assistant message carries tool calls.
func hasToolCalls(msgs []chatMessage) bool {
	for _, m := range msgs {
		if len(m.ToolCalls) > 0 {
			return true
		}
	}
	return false
}

// toolArguments is a tool call's arguments for a template: the JSON text
// (a string, as OpenAI sends it, or an object, as Hugging Face's
// convention has it) as a string when asString, else as an object whose
// keys keep their order (json.RawMessage).
func toolArguments(raw json.RawMessage, asString bool) (any, error) {
	var text string
	switch {
	case isNull(raw):
		raw = json.RawMessage("{}")
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			return nil, err
		}
		if asString {
			return text, nil
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(text), &obj) != nil || obj == nil {
			return text, nil // not an object: the text itself
		}
		return json.RawMessage(text), nil
	case raw[0] != '{':
		return nil, fmt.Errorf("arguments must be a JSON object or a string holding one")
	}
	if asString {
		return string(raw), nil
	}
	return raw, nil
}

// renderChatTokens renders a chat request's messages into prompt tokens
// through the chat template, parsing the special tokens (<s>, </s>) that
// the template writes but not those in the messages: a user's "</s>" stays
// text. Without a template (llama2.c checkpoints) renderChat does it in Go.
func (s *Server) renderChatTokens(ctx context.Context, msgs []chatMessage, tools []any) ([]int, *requestError) {
	if s.tmpl == nil {
		return s.renderChat(msgs)
	}
	text, err := s.renderTemplate(ctx, msgs, true, true, tools)
	if err != nil {
		return nil, err
	}
	bos := s.tok.AddBOS() && !strings.HasPrefix(text, s.tok.Piece(s.tok.BOS()))
	return s.tok.EncodeRendered(text, bos), nil
}

// renderChat renders a conversation as Llama 2 does (Meta's
// chat_completion): each finished exchange as
// BOS "[INST] {user} [/INST] {assistant} " EOS, the last user message as
// BOS "[INST] {user} [/INST]", with the system prompt inside the first
// [INST] block (chat.Llama2Prompt), contents trimmed of surrounding white
// space, the roles as llama2Roles says.
func (s *Server) renderChat(msgs []chatMessage) ([]int, *requestError) {
	if err := llama2Roles(msgs, true); err != nil {
		return nil, err
	}
	var system string
	texts := make([]string, 0, len(msgs))
	for i, m := range msgs {
		text, err := messageText(i, m.Content, false)
		if err != nil {
			return nil, err
		}
		text = strings.TrimSpace(text)
		if i == 0 && (m.Role == "system" || m.Role == "developer") {
			system = text
			continue
		}
		texts = append(texts, text)
	}
	var tokens []int
	for i := 0; i+1 < len(texts); i += 2 {
		sys := ""
		if i == 0 {
			sys = system
		}
		turn := chat.Llama2Prompt(sys, texts[i]) + " " + texts[i+1] + " "
		tokens = append(tokens, s.tok.Encode(turn, true, true)...)
	}
	sys := ""
	if len(texts) == 1 {
		sys = system
	}
	tokens = append(tokens, s.tok.Encode(chat.Llama2Prompt(sys, texts[len(texts)-1]), true, false)...)
	return tokens, nil
}

// applyTemplateRequest is POST /apply-template's body, as llama.cpp's
// server takes it.
type applyTemplateRequest struct {
	Messages            []chatMessage     `json:"messages"`
	AddGenerationPrompt *bool             `json:"add_generation_prompt"`
	Tools               []json.RawMessage `json:"tools"`
}

// handleApplyTemplate answers {"prompt": rendered text} without generating.
func (s *Server) handleApplyTemplate(w http.ResponseWriter, r *http.Request) {
	var req applyTemplateRequest
	if err := s.readBody(w, r, func() *requestError { return decodeBody(w, r, &req) }); err != nil {
		writeRequestError(w, err)
		return
	}
	addGen := req.AddGenerationPrompt == nil || *req.AddGenerationPrompt
	_, _, tools, err := s.toolDefs(req.Tools)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	text, err := s.renderTemplate(r.Context(), req.Messages, addGen, false, tools)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"prompt": text})
}
