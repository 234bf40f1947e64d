// The OpenAI API as `serve` speaks it: the JSON shapes of requests and
// responses, and the reading and validation of requests.

package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"

	"github.com/llama2-go/llama2/chat"
)

// ---- OpenAI wire types ----

type apiErrorBody struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// requestError is a client error found while reading a request.
type requestError struct {
	status int
	code   string
	param  string
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(code, param, format string, args ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, code: code, param: param, msg: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, status int, typ, code, param, msg string) {
	e := apiError{Message: msg, Type: typ}
	if code != "" {
		e.Code = &code
	}
	if param != "" {
		e.Param = &param
	}
	writeJSON(w, status, apiErrorBody{Error: e})
}

func writeRequestError(w http.ResponseWriter, err *requestError) {
	writeError(w, err.status, "invalid_request_error", err.code, err.param, err.msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own types always marshal
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// commonParams are the request fields shared by both generation endpoints.
// The OpenAI fields that do not apply here are accepted only with their
// neutral values (n 1, penalties 0, logprobs null or false, ...); user is
// accepted and ignored, and so is model (there is one).
type commonParams struct {
	Model         *string          `json:"model"`
	MaxTokens     *int             `json:"max_tokens"`
	Temperature   *float64         `json:"temperature"`
	TopP          *float64         `json:"top_p"`
	Seed          *int64           `json:"seed"`
	Stop          json.RawMessage  `json:"stop"`
	Stream        *bool            `json:"stream"`
	StreamOptions *streamOptions   `json:"stream_options"`
	N             *int             `json:"n"`
	User          *string          `json:"user"`
	Logprobs      json.RawMessage  `json:"logprobs"`
	FrequencyPen  *float64         `json:"frequency_penalty"`
	PresencePen   *float64         `json:"presence_penalty"`
	LogitBias     map[string]int64 `json:"logit_bias"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type completionRequest struct {
	commonParams
	Prompt json.RawMessage `json:"prompt"`
	Echo   *bool           `json:"echo"`
	BestOf *int            `json:"best_of"`
	Suffix *string         `json:"suffix"`
}

type chatRequest struct {
	commonParams
	Messages            []chatMessage   `json:"messages"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	TopLogprobs         json.RawMessage `json:"top_logprobs"`

	Tools []json.RawMessage `json:"tools"` // for the chat template (template.go)
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    *string         `json:"name"`

	// An assistant's tool calls; in a tool's answer, the call's id
	// (template.go).
	ToolCalls  []chatToolCall `json:"tool_calls"`
	ToolCallID string         `json:"tool_call_id"`
}

type tokenUsage struct {
	PromptTokens        int                  `json:"prompt_tokens"`
	CompletionTokens    int                  `json:"completion_tokens"`
	TotalTokens         int                  `json:"total_tokens"`
	PromptTokensDetails *promptTokensDetails `json:"prompt_tokens_details,omitempty"`
}

// promptTokensDetails says how many prompt tokens a slot's cache already
// held (llama.cpp's cache_prompt; OpenAI's prompt caching).
type promptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type completionChoice struct {
	Index        int       `json:"index"`
	Text         string    `json:"text"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *tokenUsage        `json:"usage,omitempty"`
}

type chatMessageOut struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      *chatMessageOut `json:"message,omitempty"`
	Delta        *chatDelta      `json:"delta,omitempty"`
	Logprobs     *struct{}       `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *tokenUsage  `json:"usage,omitempty"`
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ---- reading requests ----

// decodeBody reads a JSON request body of at most maxBodyBytes strictly:
// unknown fields, wrong types and trailing data are errors.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) *requestError {
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
			if terr != nil {
				err = terr
			}
		}
	}
	if err == nil {
		return nil
	}
	var maxErr *http.MaxBytesError
	var synErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &maxErr):
		return &requestError{status: http.StatusRequestEntityTooLarge, code: "request_too_large",
			msg: fmt.Sprintf("the request body is larger than %d bytes", maxBodyBytes)}
	case errors.Is(err, io.EOF):
		return badRequest("invalid_json", "", "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid_json", "", "malformed JSON: unexpected end of the body")
	case errors.As(err, &synErr):
		return badRequest("invalid_json", "", "malformed JSON at byte %d: %v", synErr.Offset, synErr)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badRequest("invalid_json", "", "the request body must be a JSON object, not %s", typeErr.Value)
		}
		field := strings.TrimPrefix(typeErr.Field, "commonParams.")
		return badRequest("invalid_type", field, "invalid type for %s: expected %s, got %s",
			field, jsonTypeName(typeErr.Type.String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest("unknown_parameter", field, "unrecognized request argument: %s", field)
	}
	return badRequest("invalid_json", "", "malformed JSON: %v", err)
}

func jsonTypeName(goType string) string {
	switch strings.TrimLeft(goType, "*") {
	case "int", "int64":
		return "an integer"
	case "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	}
	if strings.HasPrefix(goType, "[]") {
		return "an array"
	}
	return "an object"
}

// genParams are a validated request's generation settings.
type genParams struct {
	prompt      []int
	maxTokens   int // sampled tokens at most, already clamped to the context
	temperature float32
	topP        float32
	seed        uint64
	stop        []string
	stream      bool
	usage       bool // stream_options.include_usage
}

// isNull reports whether a raw optional value is absent or null.
func isNull(raw json.RawMessage) bool {
	t := strings.TrimSpace(string(raw))
	return t == "" || t == "null"
}

// isNullish reports whether a raw optional value is absent, null, false or 0.
func isNullish(raw json.RawMessage) bool {
	switch strings.TrimSpace(string(raw)) {
	case "", "null", "false", "0":
		return true
	}
	return false
}

func (s *Server) commonParams(c *commonParams, maxTokens *int) (genParams, *requestError) {
	var g genParams
	if c.N != nil && *c.N != 1 {
		return g, badRequest("invalid_value", "n", "n must be 1: one choice per request is supported")
	}
	if !isNullish(c.Logprobs) {
		return g, badRequest("invalid_value", "logprobs", "logprobs are not supported")
	}
	if c.FrequencyPen != nil && *c.FrequencyPen != 0 {
		return g, badRequest("invalid_value", "frequency_penalty", "frequency_penalty is not supported (only 0)")
	}
	if c.PresencePen != nil && *c.PresencePen != 0 {
		return g, badRequest("invalid_value", "presence_penalty", "presence_penalty is not supported (only 0)")
	}
	if len(c.LogitBias) > 0 {
		return g, badRequest("invalid_value", "logit_bias", "logit_bias is not supported")
	}
	seqLen := s.model.Config.SeqLen
	g.maxTokens = defaultMaxTokens
	if maxTokens != nil {
		if *maxTokens <= 0 {
			return g, badRequest("invalid_value", "max_tokens", "max_tokens must be at least 1, got %d", *maxTokens)
		}
		if *maxTokens > seqLen {
			return g, badRequest("invalid_value", "max_tokens", "max_tokens %d is beyond the model's context of %d tokens", *maxTokens, seqLen)
		}
		g.maxTokens = *maxTokens
	}
	g.temperature = 1
	if c.Temperature != nil {
		if *c.Temperature < 0 {
			return g, badRequest("invalid_value", "temperature", "temperature must not be negative, got %g", *c.Temperature)
		}
		g.temperature = float32(*c.Temperature)
	}
	g.topP = 0.9
	if c.TopP != nil {
		if !(*c.TopP > 0 && *c.TopP <= 1) {
			return g, badRequest("invalid_value", "top_p", "top_p must be in (0, 1], got %g", *c.TopP)
		}
		g.topP = float32(*c.TopP)
	}
	if c.Seed != nil {
		g.seed = uint64(*c.Seed) // as the CLI's -s
		if g.seed == 0 {
			g.seed = zeroSeed
		}
	} else {
		for g.seed == 0 {
			g.seed = mrand.Uint64()
		}
	}
	stop, err := parseStop(c.Stop)
	if err != nil {
		return g, err
	}
	g.stop = stop
	g.stream = c.Stream != nil && *c.Stream
	g.usage = c.StreamOptions != nil && c.StreamOptions.IncludeUsage
	return g, nil
}

func parseStop(raw json.RawMessage) ([]string, *requestError) {
	if isNull(raw) {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, nil
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, badRequest("invalid_type", "stop", "stop must be a string or an array of strings")
	}
	if len(many) > maxStopStrings {
		return nil, badRequest("invalid_value", "stop", "at most %d stop strings are allowed, got %d", maxStopStrings, len(many))
	}
	var stops []string
	for _, s := range many {
		if s != "" {
			stops = append(stops, s)
		}
	}
	return stops, nil
}

// fit checks that the prompt fits the context and clamps max_tokens to what
// fits: a sequence feeds len(prompt)-1 prompt positions, then one per
// sampled token, within seq_len positions.
func (s *Server) fit(g *genParams) *requestError {
	seqLen := s.model.Config.SeqLen
	if len(g.prompt) > seqLen {
		return &requestError{status: http.StatusBadRequest, code: "context_length_exceeded", param: "messages",
			msg: fmt.Sprintf("the prompt is %d tokens long, more than the model's context of %d tokens", len(g.prompt), seqLen)}
	}
	g.maxTokens = min(g.maxTokens, seqLen-len(g.prompt)+1)
	return nil
}

func (s *Server) parseCompletion(w http.ResponseWriter, r *http.Request) (genParams, *requestError) {
	var req completionRequest
	if err := decodeBody(w, r, &req); err != nil {
		return genParams{}, err
	}
	g, err := s.commonParams(&req.commonParams, req.MaxTokens)
	if err != nil {
		return g, err
	}
	switch {
	case req.Echo != nil && *req.Echo:
		return g, badRequest("invalid_value", "echo", "echo is not supported")
	case req.BestOf != nil && *req.BestOf != 1:
		return g, badRequest("invalid_value", "best_of", "best_of must be 1")
	case req.Suffix != nil && *req.Suffix != "":
		return g, badRequest("invalid_value", "suffix", "suffix is not supported")
	}
	prompt, err := parsePrompt(req.Prompt)
	if err != nil {
		return g, err
	}
	g.prompt = s.tok.Encode(prompt, s.tok.AddBOS(), false)
	if err := s.fit(&g); err != nil {
		err.param = "prompt"
		return g, err
	}
	return g, nil
}

// parsePrompt accepts a string or an array of exactly one string.
func parsePrompt(raw json.RawMessage) (string, *requestError) {
	if isNull(raw) {
		return "", badRequest("missing_required_parameter", "prompt", "prompt is required")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return one, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err == nil && len(many) == 1 {
		return many[0], nil
	}
	return "", badRequest("invalid_type", "prompt", "prompt must be a string (or an array of exactly one string)")
}

func (s *Server) parseChat(w http.ResponseWriter, r *http.Request) (genParams, *requestError) {
	var req chatRequest
	if err := decodeBody(w, r, &req); err != nil {
		return genParams{}, err
	}
	maxTokens := req.MaxTokens
	if req.MaxCompletionTokens != nil {
		if maxTokens != nil && *maxTokens != *req.MaxCompletionTokens {
			return genParams{}, badRequest("invalid_value", "max_completion_tokens", "max_tokens and max_completion_tokens differ; send one")
		}
		maxTokens = req.MaxCompletionTokens
	}
	g, err := s.commonParams(&req.commonParams, maxTokens)
	if err != nil {
		if err.param == "max_tokens" && req.MaxCompletionTokens != nil {
			err.param = "max_completion_tokens"
		}
		return g, err
	}
	if !isNullish(req.TopLogprobs) {
		return g, badRequest("invalid_value", "top_logprobs", "top_logprobs is not supported")
	}
	prompt, err := s.renderChatTokens(r.Context(), req.Messages, req.Tools)
	if err != nil {
		return g, err
	}
	g.prompt = prompt
	if err := s.fit(&g); err != nil {
		return g, err
	}
	return g, nil
}

// messageText is a message's content: a string, or an array of text parts.
func messageText(i int, raw json.RawMessage) (string, *requestError) {
	param := fmt.Sprintf("messages[%d].content", i)
	var text string
	if err := json.Unmarshal(raw, &text); err == nil && !isNull(raw) {
		return text, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err == nil && parts != nil {
		var b strings.Builder
		for _, p := range parts {
			if p.Type != "text" {
				return "", badRequest("invalid_value", param, "content parts of type %q are not supported (only text)", p.Type)
			}
			b.WriteString(p.Text)
		}
		return b.String(), nil
	}
	return "", badRequest("invalid_type", param, "%s must be a string or an array of text parts", param)
}

// renderChat renders a conversation as Llama 2 does (Meta's
// chat_completion): each finished exchange as
// BOS "[INST] {user} [/INST] {assistant} " EOS, the last user message as
// BOS "[INST] {user} [/INST]", with the system prompt inside the first
// [INST] block (model.Llama2ChatPrompt), contents trimmed of surrounding
// white space. An optional system (or developer) message comes first; then
// user and assistant alternate, starting and ending with user.
func (s *Server) renderChat(msgs []chatMessage) ([]int, *requestError) {
	if len(msgs) == 0 {
		return nil, badRequest("missing_required_parameter", "messages", "messages is required and must not be empty")
	}
	var system string
	texts := make([]string, 0, len(msgs))
	for i, m := range msgs {
		text, err := messageText(i, m.Content)
		if err != nil {
			return nil, err
		}
		text = strings.TrimSpace(text)
		role := m.Role
		switch {
		case (role == "system" || role == "developer") && i == 0:
			system = text
			continue
		case role == "system" || role == "developer":
			return nil, badRequest("invalid_value", fmt.Sprintf("messages[%d].role", i), "a %s message may only come first", role)
		case role != "user" && role != "assistant":
			return nil, badRequest("invalid_value", fmt.Sprintf("messages[%d].role", i), "unsupported role %q (system, user or assistant)", role)
		}
		want := "user"
		if len(texts)%2 == 1 {
			want = "assistant"
		}
		if role != want {
			return nil, badRequest("invalid_value", fmt.Sprintf("messages[%d].role", i),
				"expected a %s message: after an optional system message, user and assistant messages alternate, starting with user", want)
		}
		texts = append(texts, text)
	}
	if len(texts)%2 == 0 {
		return nil, badRequest("invalid_value", "messages", "the last message must be from the user")
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
