// Package goclient tests `llama2 serve` with the official Go client,
// github.com/openai/openai-go/v3, in a module of its own so that the
// runtime does not depend on it. e2e/run.sh starts the server and sets
// LLAMA2_BASE_URL; without it the tests skip.
package goclient

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

const model = "stories260K"

func newClient(t *testing.T) openai.Client {
	url := os.Getenv("LLAMA2_BASE_URL")
	if url == "" {
		t.Skip("LLAMA2_BASE_URL is not set: run e2e/run.sh")
	}
	if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+/v1$`).MatchString(url) {
		t.Fatalf("LLAMA2_BASE_URL %q is not a loopback server", url)
	}
	return openai.NewClient(option.WithBaseURL(url+"/"), option.WithAPIKey("unused"),
		option.WithMaxRetries(0), option.WithRequestTimeout(60*time.Second))
}

type person struct {
	Name string   `json:"name"`
	Age  int      `json:"age"`
	Pets []string `json:"pets"`
}

var personSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"name": map[string]any{"type": "string", "maxLength": 12},
		"age":  map[string]any{"type": "integer", "minimum": 1, "maximum": 99},
		"pets": map[string]any{"type": "array", "items": map[string]any{"enum": []string{"cat", "dog"}}, "maxItems": 2},
	},
	"required":             []string{"name", "age", "pets"},
	"additionalProperties": false,
}

// TestStructuredOutput: a json_schema answer decodes into the Go struct,
// strictly, streamed and not.
func TestStructuredOutput(t *testing.T) {
	c := newClient(t)
	for seed := int64(1); seed <= 3; seed++ {
		params := openai.ChatCompletionNewParams{
			Model:               model,
			Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Describe Lily.")},
			Seed:                openai.Int(seed),
			Temperature:         openai.Float(1.2),
			MaxCompletionTokens: openai.Int(200),
			ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
				JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "person", Strict: openai.Bool(true), Schema: personSchema}}},
		}
		resp, err := c.Chat.Completions.New(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		content := resp.Choices[0].Message.Content
		var p person
		dec := json.NewDecoder(strings.NewReader(content))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("seed %d: %q does not decode: %v", seed, content, err)
		}
		if p.Age < 1 || p.Age > 99 || len(p.Pets) > 2 || len([]rune(p.Name)) > 12 {
			t.Fatalf("seed %d: %+v breaks the schema", seed, p)
		}

		stream := c.Chat.Completions.NewStreaming(context.Background(), params)
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if got := acc.Choices[0].Message.Content; got != content {
			t.Fatalf("seed %d: streamed %q, not streamed %q", seed, got, content)
		}
	}
}

// TestToolChoiceRequired: the forced call parses into typed arguments.
func TestToolChoiceRequired(t *testing.T) {
	c := newClient(t)
	params := openai.ChatCompletionNewParams{
		Model:     model,
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
		Seed:      openai.Int(7),
		MaxTokens: openai.Int(100),
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:        "get_weather",
			Description: openai.String("The weather in a city"),
			Parameters: openai.FunctionParameters{
				"type": "object",
				"properties": map[string]any{
					"city": map[string]any{"type": "string", "maxLength": 12},
					"unit": map[string]any{"enum": []string{"C", "F"}},
				},
				"required":             []string{"city", "unit"},
				"additionalProperties": false,
			},
		})},
		ToolChoice: openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")},
	}
	resp, err := c.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	choice := resp.Choices[0]
	if choice.FinishReason != "tool_calls" || len(choice.Message.ToolCalls) != 1 {
		t.Fatalf("finish %q, calls %+v", choice.FinishReason, choice.Message.ToolCalls)
	}
	call := choice.Message.ToolCalls[0]
	var args struct {
		City string `json:"city"`
		Unit string `json:"unit"`
	}
	dec := json.NewDecoder(strings.NewReader(call.Function.Arguments))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&args); err != nil || call.Function.Name != "get_weather" || (args.Unit != "C" && args.Unit != "F") {
		t.Fatalf("call %s(%s): %v", call.Function.Name, call.Function.Arguments, err)
	}

	stream := c.Chat.Completions.NewStreaming(context.Background(), params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	calls := acc.Choices[0].Message.ToolCalls
	if len(calls) != 1 || calls[0].Function.Arguments != call.Function.Arguments || acc.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("streamed %+v, finish %q", calls, acc.Choices[0].FinishReason)
	}
}

// TestLogprobsAndUsage: logprobs in OpenAI's shape; stream_options brings
// the usage in the last chunk.
func TestLogprobsAndUsage(t *testing.T) {
	c := newClient(t)
	resp, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:       model,
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("A story")},
		Seed:        openai.Int(3),
		MaxTokens:   openai.Int(16),
		Logprobs:    openai.Bool(true),
		TopLogprobs: openai.Int(4),
	})
	if err != nil {
		t.Fatal(err)
	}
	entries := resp.Choices[0].Logprobs.Content
	if int64(len(entries)) != resp.Usage.CompletionTokens {
		t.Fatalf("%d entries for %d tokens", len(entries), resp.Usage.CompletionTokens)
	}
	for _, e := range entries {
		if e.Logprob > 0 || len(e.TopLogprobs) != 4 || e.TopLogprobs[0].Logprob < e.TopLogprobs[3].Logprob {
			t.Fatalf("entry %+v", e)
		}
	}

	stream := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:               model,
		Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		MaxCompletionTokens: openai.Int(5),
		Stop:                openai.ChatCompletionNewParamsStopUnion{OfStringArray: []string{"zzz"}},
		StreamOptions:       openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var usage int64
	for stream.Next() {
		if ch := stream.Current(); ch.Usage.CompletionTokens > 0 {
			usage = ch.Usage.CompletionTokens
		}
	}
	if err := stream.Err(); err != nil || usage != 5 {
		t.Fatalf("usage %d, err %v", usage, err)
	}
}

// TestBadRequestNamesTheField: an unsupported keyword is a 400 naming it.
func TestBadRequestNamesTheField(t *testing.T) {
	c := newClient(t)
	_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "x", Schema: map[string]any{"type": "string", "pattern": "^a"}}}},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "response_format.json_schema.schema.pattern" {
		t.Fatalf("want a 400 naming the keyword, got %v", err)
	}
	if !slices.Contains(strings.Fields(apiErr.Message), `"pattern"`) {
		t.Fatalf("message %q does not name the keyword", apiErr.Message)
	}
}
