// The OpenAI API as `serve` speaks it: the JSON shapes of requests and
// responses (request.go reads and checks requests).

package server

import (
	"encoding/json"
	"fmt"
	"net/http"
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
	typ := "invalid_request_error"
	if err.status >= 500 {
		typ = "server_error"
	}
	writeError(w, err.status, typ, err.code, err.param, err.msg)
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
// neutral values (n 1, ...); user is accepted and ignored, and so is
// model (there is one). top_k, min_p, repeat_penalty, repeat_last_n and
// grammar are llama.cpp's.
type commonParams struct {
	Model          *string            `json:"model"`
	MaxTokens      *int               `json:"max_tokens"`
	Temperature    *float64           `json:"temperature"`
	TopP           *float64           `json:"top_p"`
	TopK           *int               `json:"top_k"`
	MinP           *float64           `json:"min_p"`
	RepeatPenalty  *float64           `json:"repeat_penalty"`
	RepeatLastN    *int               `json:"repeat_last_n"`
	Seed           *int64             `json:"seed"`
	Stop           json.RawMessage    `json:"stop"`
	Stream         *bool              `json:"stream"`
	StreamOptions  *streamOptions     `json:"stream_options"`
	N              *int               `json:"n"`
	User           *string            `json:"user"`
	FrequencyPen   *float64           `json:"frequency_penalty"`
	PresencePen    *float64           `json:"presence_penalty"`
	LogitBias      map[string]float64 `json:"logit_bias"`
	ResponseFormat *responseFormat    `json:"response_format"`
	Grammar        *string            `json:"grammar"`
}

// responseFormat is OpenAI's response_format.
type responseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *jsonSchema `json:"json_schema"`
}

type jsonSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	Strict      *bool           `json:"strict"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type completionRequest struct {
	commonParams
	Prompt   json.RawMessage `json:"prompt"`
	Logprobs *int            `json:"logprobs"` // the legacy shape: how many top tokens
	Echo     *bool           `json:"echo"`
	BestOf   *int            `json:"best_of"`
	Suffix   *string         `json:"suffix"`
}

type chatRequest struct {
	commonParams
	Messages            []chatMessage     `json:"messages"`
	MaxCompletionTokens *int              `json:"max_completion_tokens"`
	Logprobs            *bool             `json:"logprobs"`
	TopLogprobs         *int              `json:"top_logprobs"`
	Tools               []json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage   `json:"tool_choice"`
	ParallelToolCalls   *bool             `json:"parallel_tool_calls"`
	// OpenAI fields accepted with their neutral values only.
	Store            *bool           `json:"store"`
	Metadata         map[string]any  `json:"metadata"`
	ServiceTier      *string         `json:"service_tier"`
	Modalities       []string        `json:"modalities"`
	ReasoningEffort  json.RawMessage `json:"reasoning_effort"`
	Audio            json.RawMessage `json:"audio"`
	Prediction       json.RawMessage `json:"prediction"`
	WebSearchOptions json.RawMessage `json:"web_search_options"`
	Functions        json.RawMessage `json:"functions"`
	FunctionCall     json.RawMessage `json:"function_call"`
	PromptCacheKey   *string         `json:"prompt_cache_key"`
	SafetyIdentifier *string         `json:"safety_identifier"`
	Verbosity        json.RawMessage `json:"verbosity"`
}

type chatMessage struct {
	Role       string            `json:"role"`
	Content    json.RawMessage   `json:"content"`
	Name       *string           `json:"name"`
	ToolCalls  []messageToolCall `json:"tool_calls"`
	ToolCallID *string           `json:"tool_call_id"`
	Refusal    *string           `json:"refusal"`
}

// messageToolCall is one of an assistant message's tool_calls, as a
// client sends it back: arguments is a JSON string (OpenAI's wire form)
// or an object (Hugging Face's convention).
type messageToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// toolDef is one entry of tools.
type toolDef struct {
	Type     string      `json:"type"`
	Function functionDef `json:"function"`
}

type functionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

// toolCall is a call in an assistant message, asked or answered.
type toolCall struct {
	Index    *int         `json:"index,omitempty"` // streamed deltas only
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function functionCall `json:"function"`
}

type functionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
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
	Index        int                 `json:"index"`
	Text         string              `json:"text"`
	Logprobs     *completionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
}

// completionLogprobs is the legacy completions' logprobs object.
type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float32            `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// chatLogprobs is a chat choice's logprobs object.
type chatLogprobs struct {
	Content []tokenLogprob `json:"content"`
	Refusal []tokenLogprob `json:"refusal"`
}

type tokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float32      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []topLogprob `json:"top_logprobs"`
}

type topLogprob struct {
	Token   string  `json:"token"`
	Logprob float32 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
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
	Role      string     `json:"role"`
	Content   *string    `json:"content"` // null with tool calls and no text
	ToolCalls []toolCall `json:"tool_calls,omitempty"`
	Refusal   *string    `json:"refusal"`
}

type chatDelta struct {
	Role      string     `json:"role,omitempty"`
	Content   *string    `json:"content,omitempty"`
	ToolCalls []toolCall `json:"tool_calls,omitempty"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      *chatMessageOut `json:"message,omitempty"`
	Delta        *chatDelta      `json:"delta,omitempty"`
	Logprobs     *chatLogprobs   `json:"logprobs"`
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
