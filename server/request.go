package server

// Reading requests: strict JSON (exact field names, known fields only),
// then the checks of every field, each failure a 400 naming the field.

import (
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/llama2-go/llama2/grammar"
	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/sample"
)

// decodeBody reads a JSON request body of at most maxBodyBytes strictly:
// field names match exactly (case included: "MAX_TOKENS" is not
// max_tokens, so a proxy that filters fields by name cannot be bypassed),
// unknown or duplicate fields, wrong types and trailing data are errors.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) *requestError {
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	return jsonError(jsonv2.UnmarshalRead(body, v, jsonv2.RejectUnknownMembers(true)), "")
}

// decodeStrict decodes the JSON of the request parameter param (one of
// tools, say) into v as strictly as decodeBody does a body.
func decodeStrict(raw json.RawMessage, v any, param string) *requestError {
	return jsonError(jsonv2.Unmarshal(raw, v, jsonv2.RejectUnknownMembers(true)), param)
}

// jsonError turns a decoding error into a 4xx naming the parameter at
// fault, its path below prefix (a parameter name, or "" for the body).
func jsonError(err error, prefix string) *requestError {
	if err == nil {
		return nil
	}
	var maxErr *http.MaxBytesError
	var semErr *jsonv2.SemanticError
	var synErr *jsontext.SyntacticError
	switch {
	case errors.As(err, &maxErr):
		return &requestError{status: http.StatusRequestEntityTooLarge, code: "request_too_large",
			msg: fmt.Sprintf("the request body is larger than %d bytes", maxBodyBytes)}
	case errors.Is(err, io.EOF) && prefix == "":
		return badRequest("invalid_json", "", "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF) && prefix == "":
		return badRequest("invalid_json", "", "malformed JSON: unexpected end of the body")
	case errors.As(err, &synErr) && prefix == "":
		return badRequest("invalid_json", "", "malformed JSON at byte %d: %v", synErr.ByteOffset, synErr.Err)
	case errors.As(err, &semErr):
		field := pointerParam(string(semErr.JSONPointer))
		if prefix != "" {
			field = strings.TrimSuffix(prefix+"."+field, ".")
		}
		switch {
		case errors.Is(semErr.Err, jsonv2.ErrUnknownName):
			return badRequest("unknown_parameter", field, "unrecognized request argument: %s (field names are case-sensitive)", field)
		case field == "":
			return badRequest("invalid_json", "", "the request body must be a JSON object")
		case semErr.GoType != nil && semErr.JSONKind != 0:
			return badRequest("invalid_type", field, "invalid type for %s: expected %s, got %s",
				field, jsonTypeName(semErr.GoType.String()), kindName(semErr.JSONKind.String()))
		}
		return badRequest("invalid_value", field, "invalid value for %s: %v", field, semErr.Err)
	}
	if prefix != "" {
		return badRequest("invalid_value", prefix, "invalid %s: %v", prefix, err)
	}
	return badRequest("invalid_json", "", "malformed JSON: %v", err)
}

// pointerParam turns a JSON pointer (/messages/0/role) into a parameter
// name (messages[0].role).
func pointerParam(ptr string) string {
	var b strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func kindName(k string) string {
	switch k {
	case "\"":
		return "a string"
	case "0":
		return "a number"
	case "t", "f":
		return "a boolean"
	case "n":
		return "null"
	case "{":
		return "an object"
	case "[":
		return "an array"
	}
	return k
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
	if strings.HasPrefix(strings.TrimLeft(goType, "*"), "[]") {
		return "an array"
	}
	return "an object"
}

// genParams are a validated request's generation settings.
type genParams struct {
	prompt      []int
	maxTokens   int // sampled tokens at most, already clamped to the context
	sampling    sample.Params
	stop        []string
	stream      bool
	usage       bool // stream_options.include_usage
	logprobs    bool
	topLogprobs int
	grammar     *grammar.Grammar
	tools       *toolSetup // nil: no tool calls to parse
}

// isNull reports whether a raw optional value is absent or null.
func isNull(raw json.RawMessage) bool {
	t := strings.TrimSpace(string(raw))
	return t == "" || t == "null"
}

// Bounds of the sampling fields, as OpenAI's (penalties, logit_bias).
const (
	maxPenalty   = 2
	maxLogitBias = 100
)

func (s *Server) commonParams(c *commonParams, maxTokens *int) (genParams, *requestError) {
	var g genParams
	p := &g.sampling
	if c.N != nil && *c.N != 1 {
		return g, badRequest("invalid_value", "n", "n must be 1: one choice per request is supported")
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
	p.Temperature = 1
	if c.Temperature != nil {
		if !(*c.Temperature >= 0 && *c.Temperature <= sample.MaxTemperature) {
			return g, badRequest("invalid_value", "temperature", "temperature must be in [0, %g], got %g", float64(sample.MaxTemperature), *c.Temperature)
		}
		p.Temperature = float32(*c.Temperature)
	}
	p.TopP = 0.9
	if c.TopP != nil {
		if !(*c.TopP > 0 && *c.TopP <= 1) {
			return g, badRequest("invalid_value", "top_p", "top_p must be in (0, 1], got %g", *c.TopP)
		}
		p.TopP = float32(*c.TopP)
	}
	if c.TopK != nil {
		if *c.TopK < 0 {
			return g, badRequest("invalid_value", "top_k", "top_k must not be negative (0 is off), got %d", *c.TopK)
		}
		p.TopK = *c.TopK
	}
	if c.MinP != nil {
		if !(*c.MinP >= 0 && *c.MinP <= 1) {
			return g, badRequest("invalid_value", "min_p", "min_p must be in [0, 1], got %g", *c.MinP)
		}
		p.MinP = float32(*c.MinP)
	}
	if c.RepeatPenalty != nil {
		if !(*c.RepeatPenalty > 0 && *c.RepeatPenalty <= 10) {
			return g, badRequest("invalid_value", "repeat_penalty", "repeat_penalty must be in (0, 10] (1 is off), got %g", *c.RepeatPenalty)
		}
		p.RepeatPenalty = float32(*c.RepeatPenalty)
	}
	if c.RepeatLastN != nil {
		if *c.RepeatLastN < -1 {
			return g, badRequest("invalid_value", "repeat_last_n", "repeat_last_n must be -1 (the whole context), 0 (64) or positive, got %d", *c.RepeatLastN)
		}
		p.RepeatLastN = *c.RepeatLastN
	}
	for _, pen := range []struct {
		name string
		v    *float64
		dst  *float32
	}{{"frequency_penalty", c.FrequencyPen, &p.FrequencyPenalty}, {"presence_penalty", c.PresencePen, &p.PresencePenalty}} {
		if pen.v == nil {
			continue
		}
		if !(*pen.v >= -maxPenalty && *pen.v <= maxPenalty) {
			return g, badRequest("invalid_value", pen.name, "%s must be in [-2, 2], got %g", pen.name, *pen.v)
		}
		*pen.dst = float32(*pen.v)
	}
	if len(c.LogitBias) > 0 {
		vocab := s.model.Config.VocabSize
		p.LogitBias = make(map[int]float32, len(c.LogitBias))
		for k, v := range c.LogitBias {
			id, err := strconv.Atoi(k)
			if err != nil || id < 0 || id >= vocab {
				return g, badRequest("invalid_value", "logit_bias", "logit_bias key %q is not a token id of this model (0 to %d)", k, vocab-1)
			}
			if !(v >= -maxLogitBias && v <= maxLogitBias) {
				return g, badRequest("invalid_value", "logit_bias", "logit_bias for token %d must be in [-100, 100], got %g", id, v)
			}
			p.LogitBias[id] = float32(v)
			if v == -maxLogitBias { // OpenAI: -100 bans the token
				p.LogitBias[id] = float32(math.Inf(-1))
			}
		}
	}
	if c.Seed != nil {
		p.Seed = uint64(*c.Seed) // as the CLI's -s
		if p.Seed == 0 {
			p.Seed = zeroSeed
		}
	} else {
		for p.Seed == 0 {
			p.Seed = mrand.Uint64()
		}
	}
	if err := p.Validate(s.model.Config.VocabSize); err != nil {
		return g, badRequest("invalid_value", "", "%v", err) // unreachable: the checks above
	}
	stop, err := parseStop(c.Stop)
	if err != nil {
		return g, err
	}
	g.stop = stop
	g.stream = c.Stream != nil && *c.Stream
	g.usage = c.StreamOptions != nil && c.StreamOptions.IncludeUsage
	if g.grammar, err = s.requestGrammar(c); err != nil {
		return g, err
	}
	return g, nil
}

// requestGrammar compiles response_format's schema or the grammar field.
func (s *Server) requestGrammar(c *commonParams) (*grammar.Grammar, *requestError) {
	rf := c.ResponseFormat
	if c.Grammar != nil && *c.Grammar != "" {
		if rf != nil && rf.Type != "text" {
			return nil, badRequest("invalid_value", "grammar", "grammar and response_format %q cannot be combined", rf.Type)
		}
		g, err := s.grammars.gbnf(*c.Grammar)
		if err != nil {
			return nil, badRequest("invalid_value", "grammar", "%v", err)
		}
		return g, nil
	}
	if rf == nil {
		return nil, nil
	}
	switch rf.Type {
	case "text":
		return nil, nil
	case "json_object":
		g, err := s.grammars.gbnf(grammar.JSONGrammar)
		if err != nil {
			panic(err) // the package's own grammar compiles
		}
		return g, nil
	case "json_schema":
		js := rf.JSONSchema
		if js == nil || isNull(js.Schema) {
			return nil, badRequest("missing_required_parameter", "response_format.json_schema.schema",
				"response_format of type json_schema needs json_schema.schema")
		}
		if js.Name == "" {
			return nil, badRequest("missing_required_parameter", "response_format.json_schema.name", "response_format.json_schema.name is required")
		}
		g, err := s.grammars.schema(js.Schema)
		if err != nil {
			param := "response_format.json_schema.schema"
			var se *grammar.SchemaError
			if errors.As(err, &se) && se.Path != "" {
				param = "response_format.json_schema.schema." + pointerParam(se.Path)
			}
			return nil, badRequest("invalid_value", param, "%v", err)
		}
		return g, nil
	}
	return nil, badRequest("invalid_value", "response_format.type", "response_format type %q is not supported (text, json_object, json_schema)", rf.Type)
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
	case req.Logprobs != nil && (*req.Logprobs < 0 || *req.Logprobs > model.MaxTopLogprobs):
		return g, badRequest("invalid_value", "logprobs", "logprobs must be in [0, %d], got %d", model.MaxTopLogprobs, *req.Logprobs)
	}
	if req.Logprobs != nil {
		g.logprobs, g.topLogprobs = true, *req.Logprobs
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

// chatNeutral checks the OpenAI chat fields that are accepted only with
// their neutral values.
func chatNeutral(req *chatRequest) *requestError {
	unsupported := func(name string, raw json.RawMessage) *requestError {
		if isNull(raw) {
			return nil
		}
		return badRequest("invalid_value", name, "%s is not supported", name)
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"reasoning_effort", req.ReasoningEffort}, {"audio", req.Audio}, {"prediction", req.Prediction},
		{"web_search_options", req.WebSearchOptions}, {"verbosity", req.Verbosity}} {
		if err := unsupported(f.name, f.raw); err != nil {
			return err
		}
	}
	if !isNull(req.Functions) || !isNull(req.FunctionCall) {
		name := "functions"
		if isNull(req.Functions) {
			name = "function_call"
		}
		return badRequest("invalid_value", name, "%s is deprecated and not supported; use tools and tool_choice", name)
	}
	switch {
	case req.Store != nil && *req.Store:
		return badRequest("invalid_value", "store", "store is not supported: nothing is stored")
	case req.ServiceTier != nil && *req.ServiceTier != "auto" && *req.ServiceTier != "default":
		return badRequest("invalid_value", "service_tier", "service_tier must be auto or default")
	case len(req.Modalities) > 1 || (len(req.Modalities) == 1 && req.Modalities[0] != "text"):
		return badRequest("invalid_value", "modalities", "only the text modality is supported")
	}
	return nil
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
	if err := chatNeutral(&req); err != nil {
		return genParams{}, err
	}
	g, err := s.commonParams(&req.commonParams, maxTokens)
	if err != nil {
		if err.param == "max_tokens" && req.MaxCompletionTokens != nil {
			err.param = "max_completion_tokens"
		}
		return g, err
	}
	g.logprobs = req.Logprobs != nil && *req.Logprobs
	if req.TopLogprobs != nil {
		switch {
		case *req.TopLogprobs < 0 || *req.TopLogprobs > model.MaxTopLogprobs:
			return g, badRequest("invalid_value", "top_logprobs", "top_logprobs must be in [0, %d], got %d", model.MaxTopLogprobs, *req.TopLogprobs)
		case !g.logprobs:
			return g, badRequest("invalid_value", "top_logprobs", "top_logprobs needs logprobs: true")
		}
		g.topLogprobs = *req.TopLogprobs
	}
	tools, tmplTools, err := s.parseTools(&req, g.grammar != nil)
	if err != nil {
		return g, err
	}
	g.tools = tools
	if tools != nil && tools.forced != nil {
		g.grammar = tools.forced
	}
	prompt, err := s.renderChatTokens(r.Context(), req.Messages, tmplTools)
	if err != nil {
		return g, err
	}
	g.prompt = prompt
	if err := s.fit(&g); err != nil {
		return g, err
	}
	return g, nil
}

// messageText is a message's content: a string, or an array of text parts;
// null or absent is "" where allowed (an assistant's tool calls).
func messageText(i int, raw json.RawMessage, nullOK bool) (string, *requestError) {
	param := fmt.Sprintf("messages[%d].content", i)
	if nullOK && isNull(raw) {
		return "", nil
	}
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
