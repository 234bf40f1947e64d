package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/tokenizer"
	"github.com/stretchr/testify/require"
)

func TestServeHealthAndModels(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)

	resp, err := c.Get(url + "/health")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"status":"ok"}`, string(b))

	resp, err = c.Get(url + "/v1/models")
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.JSONEq(t, fmt.Sprintf(`{"object":"list","data":[{"id":"stories260K","object":"model","created":%d,"owned_by":"llama2-go"}]}`, s.created), string(b))

	resp, err = c.Get(url + "/v1/models/stories260K")
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, fmt.Sprintf(`{"id":"stories260K","object":"model","created":%d,"owned_by":"llama2-go"}`, s.created), string(b))

	resp, err = c.Get(url + "/v1/models/gpt-4")
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.JSONEq(t, `{"error":{"message":"the model \"gpt-4\" does not exist; this server has \"stories260K\"","type":"invalid_request_error","param":"model","code":"model_not_found"}}`, string(b))

	// While shutting down, /health says so (for load balancers).
	s.Drain()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.JSONEq(t, `{"status":"shutting_down"}`, rec.Body.String())
}

// TestServeGreedyMatchesCLI: a greedy completion is the CLI's greedy story
// after the prompt, for a length that ends by max_tokens and one that ends
// where the model samples BOS.
func TestServeGreedyMatchesCLI(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)
	const prompt = "Once upon a time"
	promptTokens := len(s.tok.Encode(prompt, true, false))
	for _, steps := range []int{64, 512} {
		want := cliText(t, s, prompt, steps)
		maxTokens := steps - promptTokens + 1
		out := complete(t, c, url, "/v1/completions",
			fmt.Sprintf(`{"model":"x","prompt":%q,"temperature":0,"max_tokens":%d}`, prompt, maxTokens))
		require.Equal(t, want, out.text(), "steps %d", steps)
		require.Equal(t, "text_completion", out.Object)
		require.Equal(t, "stories260K", out.Model)
		require.Regexp(t, `^cmpl-[a-z0-9]+$`, out.ID)
		require.InDelta(t, time.Now().Unix(), out.Created, 5)
		require.Equal(t, "null", string(out.Choices[0].Logprobs))
		require.Equal(t, promptTokens, out.Usage.PromptTokens)
		require.Equal(t, out.Usage.PromptTokens+out.Usage.CompletionTokens, out.Usage.TotalTokens)
		if steps == 64 {
			require.Equal(t, "length", *out.Choices[0].FinishReason)
			require.Equal(t, maxTokens, out.Usage.CompletionTokens)
		} else {
			require.Equal(t, "stop", *out.Choices[0].FinishReason, "the greedy story ends with BOS")
			require.Less(t, out.Usage.CompletionTokens, maxTokens)
		}
	}
}

func TestServeStreamEqualsNonStream(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)
	for _, tc := range []struct{ path, body string }{
		{"/v1/completions", `{"prompt":"Once upon a time","seed":42,"max_tokens":100,"temperature":0.8,"top_p":0.95`},
		{"/v1/completions", `{"prompt":["Lily"],"seed":7,"max_tokens":50,"top_p":1,"stop":["zzz"]`},
		{"/v1/chat/completions", `{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Tell me a story."}],"seed":3,"max_tokens":80`},
	} {
		full := complete(t, c, url, tc.path, tc.body+"}")
		events, done := stream(t, c, url, tc.path, tc.body+`,"stream":true,"stream_options":{"include_usage":true}}`)
		require.True(t, done, "ends with [DONE]")
		require.Equal(t, full.text(), streamedText(events), tc.body)
		require.NotEmpty(t, full.text())

		chat := strings.Contains(tc.path, "chat")
		last, usage := events[len(events)-2], events[len(events)-1]
		require.Equal(t, *full.Choices[0].FinishReason, *last.Choices[0].FinishReason)
		require.Empty(t, usage.Choices)
		require.Equal(t, full.Usage.PromptTokens, usage.Usage.PromptTokens)
		require.Equal(t, full.Usage.CompletionTokens, usage.Usage.CompletionTokens)
		require.Equal(t, full.Usage.TotalTokens, usage.Usage.TotalTokens)
		require.Equal(t, usage.Usage.PromptTokens-1, usage.Usage.PromptTokensDetails.CachedTokens,
			"the same prompt again: the slot's cache holds all but its last token")
		for i, ev := range events {
			require.Equal(t, events[0].ID, ev.ID)
			if chat {
				require.Equal(t, "chat.completion.chunk", ev.Object)
			} else {
				require.Equal(t, "text_completion", ev.Object)
			}
			if i >= len(events)-2 {
				continue
			}
			require.Nil(t, ev.Choices[0].FinishReason)
			if chat && i == 0 {
				require.Equal(t, "assistant", ev.Choices[0].Delta.Role, "the first chat chunk carries the role")
				continue
			}
			if chat {
				require.Empty(t, ev.Choices[0].Delta.Role)
				require.NotEmpty(t, *ev.Choices[0].Delta.Content, "one chunk per piece of text")
			} else {
				require.NotEmpty(t, *ev.Choices[0].Text)
			}
		}
		if chat {
			require.False(t, strings.HasPrefix(full.text(), " "), "the answer's leading space is dropped")
			require.Equal(t, "chat.completion", full.Object)
			require.Equal(t, "assistant", full.Choices[0].Message.Role)
			require.Regexp(t, `^chatcmpl-`, full.ID)
		}
	}
}

// TestServeUTF8Chunks: streamed chunks are whole UTF-8 characters even when
// the model spells characters as raw-byte tokens (likely at a high
// temperature, where byte tokens, half of tok512, get sampled).
func TestServeUTF8Chunks(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)
	nonASCII := 0
	for seed := 1; seed <= 3; seed++ {
		events, done := stream(t, c, url, "/v1/completions",
			fmt.Sprintf(`{"prompt":"Zoë saw a ☕","seed":%d,"max_tokens":300,"temperature":5,"top_p":1,"stream":true}`, seed))
		require.True(t, done)
		for _, ev := range events {
			text := *ev.Choices[0].Text
			require.True(t, utf8.ValidString(text))
			require.NotContains(t, text, "\uFFFD", "no broken character")
			for _, r := range text {
				if r >= utf8.RuneSelf {
					nonASCII++
				}
			}
		}
	}
	require.NotZero(t, nonASCII, "the test saw multi-byte characters")
}

func TestServeStopStrings(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)
	base := complete(t, c, url, "/v1/completions", `{"prompt":"Once upon a time","temperature":0,"max_tokens":100}`).text()
	require.True(t, strings.HasPrefix(base, ", there was a little girl named Lily."), base)

	cases := []struct {
		stop string
		want string
	}{
		{`"Lily"`, ", there was a little girl named "},
		{`["park", " girl"]`, ", there was a little"},
		{`["named Lily. She"]`, ", there was a little girl "},
		{`"\n"`, base[:strings.Index(base, "\n")]},
		{`["zzz"]`, base},
		{`""`, base},
		{`null`, base},
	}
	for _, tc := range cases {
		body := `{"prompt":"Once upon a time","temperature":0,"max_tokens":100,"stop":` + tc.stop
		out := complete(t, c, url, "/v1/completions", body+"}")
		require.Equal(t, tc.want, out.text(), tc.stop)
		events, done := stream(t, c, url, "/v1/completions", body+`,"stream":true}`)
		require.True(t, done)
		require.Equal(t, tc.want, streamedText(events), tc.stop)
		finish := "stop"
		if tc.want == base {
			finish = "length"
		}
		require.Equal(t, finish, *out.Choices[0].FinishReason, tc.stop)
		require.Equal(t, finish, *events[len(events)-1].Choices[0].FinishReason, tc.stop)
	}
}

func TestTrimFirstSpace(t *testing.T) {
	var got []string
	f := trimFirstSpace(func(p piece) error { got = append(got, string(p.text)); return nil })
	for _, text := range []string{" ", " Hi", " there"} {
		require.NoError(t, f(piece{text: []byte(text)}))
	}
	require.Equal(t, []string{" Hi", " there"}, got, "only the first piece loses one space")
	got = nil
	f = trimFirstSpace(func(p piece) error { got = append(got, string(p.text)); return nil })
	f(piece{text: []byte("  Hi")})
	f(piece{text: []byte(" x")})
	require.Equal(t, []string{" Hi", " x"}, got)
}

func TestServeChatRendering(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	enc := func(text string, bos, eos bool) []int { return s.tok.Encode(text, bos, eos) }
	msg := func(role, content string) chatMessage {
		b, _ := json.Marshal(content)
		return chatMessage{Role: role, Content: b}
	}
	// One user turn is exactly the CLI's chat rendering.
	got, err := s.renderChat([]chatMessage{msg("system", "Be kind."), msg("user", " Hi there ")})
	require.Nil(t, err)
	require.Equal(t, enc(chat.Llama2Prompt("Be kind.", "Hi there"), true, false), got)

	// History: BOS [INST] sys+user1 [/INST] answer EOS, BOS [INST] user2 [/INST].
	got, err = s.renderChat([]chatMessage{msg("system", "S"), msg("user", "U1"), msg("assistant", "A1"), msg("user", "U2")})
	require.Nil(t, err)
	want := append(enc("[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 ", true, true), enc("[INST] U2 [/INST]", true, false)...)
	require.Equal(t, want, got)
	require.Equal(t, tokenizer.EOS, want[len(enc("[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 ", true, false))])

	// Text parts are concatenated.
	parts := chatMessage{Role: "user", Content: json.RawMessage(`[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]`)}
	got, err = s.renderChat([]chatMessage{parts})
	require.Nil(t, err)
	require.Equal(t, enc(chat.Llama2Prompt("", "Hi there"), true, false), got)

	for _, bad := range [][]chatMessage{
		{},
		{msg("system", "S")},
		{msg("assistant", "A")},
		{msg("user", "U"), msg("user", "U")},
		{msg("user", "U"), msg("assistant", "A")},
		{msg("user", "U"), msg("system", "S"), msg("user", "U")},
		{msg("tool", "T")},
		{{Role: "user", Content: json.RawMessage(`42`)}},
		{{Role: "user"}},
		{{Role: "user", Content: json.RawMessage(`[{"type":"image_url","image_url":{}}]`)}},
	} {
		_, err := s.renderChat(bad)
		require.NotNil(t, err, "%v", bad)
		require.Equal(t, http.StatusBadRequest, err.status)
	}
}

func TestServeBadRequests(t *testing.T) {
	s, logs := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)
	long := strings.Repeat("Once upon a time there was a girl. ", 100)
	cases := []struct {
		path, body string
		status     int
		code       string
		param      string
	}{
		{"/v1/completions", ``, 400, "invalid_json", ""},
		{"/v1/completions", `{"prompt":`, 400, "invalid_json", ""},
		{"/v1/completions", `{"prompt":"a"} {}`, 400, "invalid_json", ""},
		{"/v1/completions", `[1,2]`, 400, "invalid_json", ""},
		{"/v1/completions", `{"prompt":"a",}`, 400, "invalid_json", ""},
		{"/v1/completions", `{}`, 400, "missing_required_parameter", "prompt"},
		{"/v1/completions", `{"prompt":null}`, 400, "missing_required_parameter", "prompt"},
		{"/v1/completions", `{"prompt":42}`, 400, "invalid_type", "prompt"},
		{"/v1/completions", `{"prompt":[1,2,3]}`, 400, "invalid_type", "prompt"},
		{"/v1/completions", `{"prompt":["a","b"]}`, 400, "invalid_type", "prompt"},
		{"/v1/completions", `{"prompt":"a","max_tokens":"5"}`, 400, "invalid_type", "max_tokens"},
		{"/v1/completions", `{"prompt":"a","max_tokens":1.5}`, 400, "invalid_type", "max_tokens"},
		{"/v1/completions", `{"prompt":"a","temperature":"hot"}`, 400, "invalid_type", "temperature"},
		{"/v1/completions", `{"prompt":"a","stream":"yes"}`, 400, "invalid_type", "stream"},
		{"/v1/completions", `{"prompt":"a","seed":"1"}`, 400, "invalid_type", "seed"},
		{"/v1/completions", `{"prompt":"a","stop":5}`, 400, "invalid_type", "stop"},
		{"/v1/completions", `{"prompt":"a","stop":["a","b","c","d","e"]}`, 400, "invalid_value", "stop"},
		{"/v1/completions", `{"prompt":"a","max_tokens":0}`, 400, "invalid_value", "max_tokens"},
		{"/v1/completions", `{"prompt":"a","max_tokens":-3}`, 400, "invalid_value", "max_tokens"},
		{"/v1/completions", `{"prompt":"a","max_tokens":513}`, 400, "invalid_value", "max_tokens"},
		{"/v1/completions", `{"prompt":"a","temperature":-1}`, 400, "invalid_value", "temperature"},
		{"/v1/completions", `{"prompt":"a","top_p":0}`, 400, "invalid_value", "top_p"},
		{"/v1/completions", `{"prompt":"a","top_p":1.01}`, 400, "invalid_value", "top_p"},
		{"/v1/completions", `{"prompt":"a","top_p":-0.5}`, 400, "invalid_value", "top_p"},
		{"/v1/completions", `{"prompt":"a","n":2}`, 400, "invalid_value", "n"},
		{"/v1/completions", `{"prompt":"a","logprobs":21}`, 400, "invalid_value", "logprobs"},
		{"/v1/completions", `{"prompt":"a","logprobs":true}`, 400, "invalid_type", "logprobs"},
		{"/v1/completions", `{"prompt":"a","MAX_TOKENS":3}`, 400, "unknown_parameter", "MAX_TOKENS"},
		{"/v1/completions", `{"prompt":"a","Max_Tokens":3}`, 400, "unknown_parameter", "Max_Tokens"},
		{"/v1/completions", `{"prompt":"a","max_tokens":3,"max_tokens":4}`, 400, "invalid_json", ""},
		{"/v1/completions", `{"prompt":"a","temperature":1e39}`, 400, "invalid_value", "temperature"},
		{"/v1/completions", `{"prompt":"a","top_k":-1}`, 400, "invalid_value", "top_k"},
		{"/v1/completions", `{"prompt":"a","min_p":1.5}`, 400, "invalid_value", "min_p"},
		{"/v1/completions", `{"prompt":"a","repeat_penalty":0}`, 400, "invalid_value", "repeat_penalty"},
		{"/v1/completions", `{"prompt":"a","repeat_last_n":-2}`, 400, "invalid_value", "repeat_last_n"},
		{"/v1/completions", `{"prompt":"a","grammar":"root ::= [a-"}`, 400, "invalid_value", "grammar"},
		{"/v1/completions", `{"prompt":"a","grammar":"root ::= \"a\" root"}`, 400, "invalid_value", "grammar"},
		{"/v1/completions", `{"prompt":"a","grammar":"root ::= x"}`, 400, "invalid_value", "grammar"},
		{"/v1/completions", `{"prompt":"a","grammar":"root ::= \"a\"","response_format":{"type":"json_object"}}`, 400, "invalid_value", "grammar"},
		{"/v1/completions", `{"prompt":"a","response_format":{"type":"xml"}}`, 400, "invalid_value", "response_format.type"},
		{"/v1/completions", `{"prompt":"a","response_format":{"type":"json_schema"}}`, 400, "missing_required_parameter", "response_format.json_schema.schema"},
		{"/v1/completions", `{"prompt":"a","response_format":{"type":"json_schema","json_schema":{"schema":{}}}}`, 400, "missing_required_parameter", "response_format.json_schema.name"},
		{"/v1/completions", `{"prompt":"a","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"a+"}}}}`, 400, "invalid_value", "response_format.json_schema.schema.pattern"},
		{"/v1/completions", `{"prompt":"a","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"a":{"type":"strin"}}}}}}`, 400, "invalid_value", "response_format.json_schema.schema.properties.a.type"},
		{"/v1/completions", `{"prompt":"a","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"$ref":"#/$defs/none"}}}}`, 400, "invalid_value", "response_format.json_schema.schema.$ref"},
		{"/v1/completions", `{"prompt":"a","echo":true}`, 400, "invalid_value", "echo"},
		{"/v1/completions", `{"prompt":"a","best_of":3}`, 400, "invalid_value", "best_of"},
		{"/v1/completions", `{"prompt":"a","suffix":"end"}`, 400, "invalid_value", "suffix"},
		{"/v1/completions", `{"prompt":"a","presence_penalty":2.5}`, 400, "invalid_value", "presence_penalty"},
		{"/v1/completions", `{"prompt":"a","frequency_penalty":-3}`, 400, "invalid_value", "frequency_penalty"},
		{"/v1/completions", `{"prompt":"a","logit_bias":{"512":10}}`, 400, "invalid_value", "logit_bias"},
		{"/v1/completions", `{"prompt":"a","logit_bias":{"x":10}}`, 400, "invalid_value", "logit_bias"},
		{"/v1/completions", `{"prompt":"a","logit_bias":{"5":101}}`, 400, "invalid_value", "logit_bias"},
		{"/v1/completions", `{"prompt":"a","tools":[]}`, 400, "unknown_parameter", "tools"},
		{"/v1/completions", `{"prompt":"a","messages":[]}`, 400, "unknown_parameter", "messages"},
		{"/v1/completions", `{"prompt":"` + long + `"}`, 400, "context_length_exceeded", "prompt"},
		{"/v1/chat/completions", `{}`, 400, "missing_required_parameter", "messages"},
		{"/v1/chat/completions", `{"messages":"hi"}`, 400, "invalid_type", "messages"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"prompt":"x"}`, 400, "unknown_parameter", "prompt"},
		{"/v1/chat/completions", `{"messages":[{"role":"bot","content":"hi"}]}`, 400, "invalid_value", "messages[0].role"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"temperature":-0.1}`, 400, "invalid_value", "temperature"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":0}`, 400, "invalid_value", "max_completion_tokens"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"max_completion_tokens":6}`, 400, "invalid_value", "max_completion_tokens"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"logprobs":3}`, 400, "invalid_type", "logprobs"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"top_logprobs":3}`, 400, "invalid_value", "top_logprobs"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":21}`, 400, "invalid_value", "top_logprobs"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"MESSAGES":[]}`, 400, "unknown_parameter", "MESSAGES"},
		{"/v1/chat/completions", `{"messages":[{"ROLE":"user","content":"hi"}]}`, 400, "unknown_parameter", "messages[0].ROLE"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"reasoning_effort":"low"}`, 400, "invalid_value", "reasoning_effort"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"audio":{"voice":"x"}}`, 400, "invalid_value", "audio"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"functions":[]}`, 400, "invalid_value", "functions"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"store":true}`, 400, "invalid_value", "store"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"modalities":["audio"]}`, 400, "invalid_value", "modalities"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"tool_choice":"required"}`, 400, "invalid_value", "tool_choice"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"maybe"}`, 400, "invalid_value", "tool_choice"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`, 400, "invalid_value", "tool_choice"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"web","function":{"name":"f"}}]}`, 400, "invalid_value", "tools[0].type"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a b"}}]}`, 400, "invalid_value", "tools[0].function.name"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","patternProperties":{}}}}]}`, 400, "invalid_value", "tools[0].function.parameters"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"response_format":{"type":"json_object"}}`, 400, "invalid_value", "tools"},
		{"/v1/chat/completions", `{"messages":[{"role":"tool","content":"hi","tool_call_id":"c1"}]}`, 400, "invalid_value", "messages[0].role"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"` + long + `"}]}`, 400, "context_length_exceeded", "messages"},
		{"/v1/completions", `{"prompt":"` + strings.Repeat("a", maxBodyBytes) + `"}`, 413, "request_too_large", ""},
	}
	for _, tc := range cases {
		status, b := post(t, c, url+tc.path, tc.body)
		name := tc.body[:min(len(tc.body), 80)]
		require.Equal(t, tc.status, status, "%s: %s", name, b)
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Code    *string `json:"code"`
				Param   *string `json:"param"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal(b, &e), "%s", b)
		require.Equal(t, "invalid_request_error", e.Error.Type, name)
		require.NotEmpty(t, e.Error.Message, name)
		require.Equal(t, tc.code, *e.Error.Code, "%s: %s", name, e.Error.Message)
		if tc.param == "" {
			require.Nil(t, e.Error.Param, name)
		} else {
			require.NotNil(t, e.Error.Param, "%s: %s", name, e.Error.Message)
			require.Equal(t, tc.param, *e.Error.Param, name)
		}
	}

	// Accepted and ignored: the neutral values of fields that do not apply.
	ok := `{"model":"gpt-3.5-turbo-instruct","prompt":"a","max_tokens":3,"n":1,"user":"u","logprobs":null,"echo":false,
		"best_of":1,"suffix":null,"frequency_penalty":0,"presence_penalty":0,"logit_bias":{},"stream":false,"stream_options":null,"seed":null,"stop":null,"temperature":null,"top_p":null}`
	status, b := post(t, c, url+"/v1/completions", ok)
	require.Equal(t, http.StatusOK, status, "%s", b)
	okChat := `{"model":"gpt-4o","messages":[{"role":"developer","content":"S"},{"role":"user","content":"a","name":"me"}],"max_completion_tokens":3,"n":1,
		"user":"u","logprobs":false,"top_logprobs":null,"frequency_penalty":0,"presence_penalty":0}`
	status, b = post(t, c, url+"/v1/chat/completions", okChat)
	require.Equal(t, http.StatusOK, status, "%s", b)

	// Wrong method, unknown path.
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/completions"}, {"PUT", "/v1/chat/completions"}, {"POST", "/v1/models"}, {"DELETE", "/health"},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, nil)
		resp, err := c.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, tc)
		require.NotEmpty(t, resp.Header.Get("Allow"))
		require.Contains(t, string(b), `"type":"invalid_request_error"`)
	}
	for _, path := range []string{"/", "/v1", "/v1/completion", "/v2/completions", "/v1/chat/completions/x"} {
		status, b := post(t, c, url+path, `{}`)
		require.Equal(t, http.StatusNotFound, status, path)
		require.Contains(t, string(b), `"code":"unknown_url"`)
	}
	// One log line per request, with its fields.
	require.Regexp(t, `msg=request method=POST path=/v1/completions status=400 prompt_tokens=0 completion_tokens=0 duration=`, logs.String())
	require.Regexp(t, `msg=request method=POST path=/v1/completions status=200 prompt_tokens=\d+ completion_tokens=3 duration=\S+ finish_reason=length seed=\d+ stream=false`, logs.String())
}

// TestServeContextFill: max_tokens is clamped to what fits the context and
// ends with "length" when the context fills.
func TestServeContextFill(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)
	seqLen := s.model.Config.SeqLen
	prompt := strings.Repeat("Once upon a time there was a girl. ", 40)
	n := len(s.tok.Encode(prompt, true, false))
	require.Less(t, n, seqLen)
	require.Greater(t, n, seqLen-256)
	// Sampling at a high temperature keeps BOS and EOS unlikely; seeds are
	// tried until a generation runs to the end of the context.
	for seed := 1; ; seed++ {
		out := complete(t, c, url, "/v1/completions", fmt.Sprintf(`{"prompt":%q,"seed":%d,"temperature":1.5,"top_p":1}`, prompt, seed))
		if *out.Choices[0].FinishReason == "stop" {
			require.Less(t, seed, 50)
			continue
		}
		require.Equal(t, "length", *out.Choices[0].FinishReason)
		require.Equal(t, seqLen-n+1, out.Usage.CompletionTokens, "default 256 clamped to what fits")
		require.Equal(t, n, out.Usage.PromptTokens)
		break
	}
	// A prompt of exactly the context gets one token.
	var exact string
	for i := 0; ; i++ {
		exact = strings.Repeat("a ", i)
		if len(s.tok.Encode(exact, true, false)) == seqLen {
			break
		}
		require.Less(t, i, seqLen)
	}
	out := complete(t, c, url, "/v1/completions", fmt.Sprintf(`{"prompt":%q,"max_tokens":100,"temperature":0}`, exact))
	require.LessOrEqual(t, out.Usage.CompletionTokens, 1)
}

// TestServeDeterminism: the same request with the same seed gives the same
// text while other requests run at the same time.
func TestServeDeterminism(t *testing.T) {
	o := testOptions()
	o.Parallel, o.Queue = 3, 64
	s, _ := newTestServer(t, o, nil)
	url, c := startHTTP(t, s)
	body := `{"prompt":"Once upon a time","seed":1234,"max_tokens":80,"temperature":1}`
	want := complete(t, c, url, "/v1/completions", body).text()
	chatBody := `{"messages":[{"role":"user","content":"A story"}],"seed":99,"max_tokens":80}`
	wantChat := complete(t, c, url, "/v1/chat/completions", chatBody).text()
	require.NotEmpty(t, want)

	var wg sync.WaitGroup
	results, errs := make([]string, 16), make([]error, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out completionOut
			switch i % 4 {
			case 0:
				out, errs[i] = completeE(c, url, "/v1/completions", body)
			case 1:
				var events []completionOut
				events, _, errs[i] = streamE(c, url, "/v1/completions", strings.TrimSuffix(body, "}")+`,"stream":true}`)
				results[i] = streamedText(events)
				return
			case 2:
				out, errs[i] = completeE(c, url, "/v1/chat/completions", chatBody)
			default: // noise: other seeds, other prompts
				_, errs[i] = completeE(c, url, "/v1/completions", fmt.Sprintf(`{"prompt":"The dog","seed":%d,"max_tokens":150}`, i))
				return
			}
			if errs[i] == nil {
				results[i] = out.text()
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "request %d", i)
	}
	for i, got := range results {
		switch i % 4 {
		case 0, 1:
			require.Equal(t, want, got, i)
		case 2:
			require.Equal(t, wantChat, got, i)
		}
	}
	// Without a seed, requests differ (a random seed each).
	a := complete(t, c, url, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":60}`).text()
	b := complete(t, c, url, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":60}`).text()
	require.NotEqual(t, a, b)
	// Seed 0 is a seed like any other.
	z1 := complete(t, c, url, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":60,"seed":0}`).text()
	z2 := complete(t, c, url, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":60,"seed":0}`).text()
	require.Equal(t, z1, z2)
}

// TestServeMultiTurnChat: a conversation with history (a BOS before every
// turn) generates an answer, streamed or not.
func TestServeMultiTurnChat(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)
	body := `{"messages":[{"role":"system","content":"Tell stories."},{"role":"user","content":"Hello"},{"role":"assistant","content":"Hi! Once upon a time there was a dog."},{"role":"user","content":"Go on."}],"max_tokens":60,"seed":7`
	out := complete(t, c, url, "/v1/chat/completions", body+"}")
	require.NotEmpty(t, out.text())
	require.Positive(t, out.Usage.CompletionTokens)
	events, done := stream(t, c, url, "/v1/chat/completions", body+`,"stream":true}`)
	require.True(t, done)
	require.Equal(t, out.text(), streamedText(events))
	require.Equal(t, *out.Choices[0].FinishReason, *events[len(events)-1].Choices[0].FinishReason)
}
