package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const personFormat = `"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":{
	"type":"object","properties":{"name":{"type":"string","maxLength":10},"age":{"type":"integer","minimum":1,"maximum":99},
	"pets":{"type":"array","items":{"enum":["cat","dog"]},"maxItems":2}},"required":["name","age","pets"],"additionalProperties":false}}}`

type personOut struct {
	Name string   `json:"name"`
	Age  int      `json:"age"`
	Pets []string `json:"pets"`
}

func decodePerson(t *testing.T, text string) personOut {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	var p personOut
	require.NoError(t, dec.Decode(&p), "%q", text)
	require.True(t, len([]rune(p.Name)) <= 10 && p.Age >= 1 && p.Age <= 99 && len(p.Pets) <= 2, "%q", text)
	for _, pet := range p.Pets {
		require.Contains(t, []string{"cat", "dog"}, pet)
	}
	return p
}

// TestServeStructuredOutput: json_schema and json_object answers always
// parse (and validate), streamed or not, at a temperature where the
// unconstrained model writes stories.
func TestServeStructuredOutput(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)
	for seed := 1; seed <= 6; seed++ {
		for _, path := range []string{"/v1/chat/completions", "/v1/completions"} {
			body := fmt.Sprintf(`{"prompt":"Lily","seed":%d,"temperature":1.3,"max_tokens":200,%s`, seed, personFormat)
			if strings.Contains(path, "chat") {
				body = fmt.Sprintf(`{"messages":[{"role":"user","content":"Who is Lily?"}],"seed":%d,"temperature":1.3,"max_tokens":200,%s`, seed, personFormat)
			}
			full := complete(t, c, url, path, body+"}")
			require.Equal(t, "stop", *full.Choices[0].FinishReason, full.text())
			decodePerson(t, full.text())
			events, done := stream(t, c, url, path, body+`,"stream":true}`)
			require.True(t, done)
			require.Equal(t, full.text(), streamedText(events), "streamed = not streamed")
		}
		obj := complete(t, c, url, "/v1/chat/completions", fmt.Sprintf(
			`{"messages":[{"role":"user","content":"hi"}],"seed":%d,"temperature":1.5,"max_tokens":300,"response_format":{"type":"json_object"}}`, seed))
		if *obj.Choices[0].FinishReason == "stop" {
			var v map[string]any
			require.NoError(t, json.Unmarshal([]byte(obj.text()), &v), obj.text())
		}
	}
	// A GBNF grammar.
	out := complete(t, c, url, "/v1/completions", `{"prompt":"Is it?","seed":3,"max_tokens":20,"grammar":"root ::= (\"yes\" | \"no\") \"!\"{1,3}"}`)
	require.Regexp(t, `^(yes|no)!{1,3}$`, out.text())
}

type logprobEntry struct {
	Token       string  `json:"token"`
	Logprob     float32 `json:"logprob"`
	Bytes       []int   `json:"bytes"`
	TopLogprobs []struct {
		Token   string  `json:"token"`
		Logprob float32 `json:"logprob"`
	} `json:"top_logprobs"`
}

// TestServeLogprobs: OpenAI's shapes, one entry per sampled token, the
// same streamed and not.
func TestServeLogprobs(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)
	body := `{"messages":[{"role":"user","content":"A story"}],"seed":5,"max_tokens":30,"logprobs":true,"top_logprobs":3`
	full := complete(t, c, url, "/v1/chat/completions", body+"}")
	var lp struct {
		Content []logprobEntry `json:"content"`
		Refusal *[]any         `json:"refusal"`
	}
	require.NoError(t, json.Unmarshal(full.Choices[0].Logprobs, &lp))
	require.Len(t, lp.Content, full.Usage.CompletionTokens)
	var text strings.Builder
	for _, e := range lp.Content {
		require.LessOrEqual(t, e.Logprob, float32(0))
		require.Len(t, e.TopLogprobs, 3)
		require.GreaterOrEqual(t, e.TopLogprobs[0].Logprob, e.Logprob)
		require.Equal(t, []byte(e.Token), toBytes(e.Bytes))
		text.WriteString(e.Token)
	}
	require.Equal(t, strings.TrimSpace(full.text()), strings.TrimSpace(text.String()), "the tokens spell the answer")

	events, _ := stream(t, c, url, "/v1/chat/completions", body+`,"stream":true}`)
	var streamed []logprobEntry
	for _, ev := range events {
		if len(ev.Choices) == 0 || len(ev.Choices[0].Logprobs) == 0 || string(ev.Choices[0].Logprobs) == "null" {
			continue
		}
		var part struct {
			Content []logprobEntry `json:"content"`
		}
		require.NoError(t, json.Unmarshal(ev.Choices[0].Logprobs, &part))
		streamed = append(streamed, part.Content...)
	}
	require.Equal(t, lp.Content, streamed)

	// The legacy completions shape.
	comp := complete(t, c, url, "/v1/completions", `{"prompt":"Once","seed":2,"max_tokens":10,"logprobs":2}`)
	var legacy completionLogprobs
	require.NoError(t, json.Unmarshal(comp.Choices[0].Logprobs, &legacy))
	require.Len(t, legacy.Tokens, 10)
	require.Len(t, legacy.TokenLogprobs, 10)
	require.Len(t, legacy.TopLogprobs, 10)
	require.Equal(t, 0, legacy.TextOffset[0])
	require.Equal(t, comp.text(), strings.Join(legacy.Tokens, ""))
	for i, m := range legacy.TopLogprobs {
		require.NotEmpty(t, m)
		require.Equal(t, len(strings.Join(legacy.Tokens[:i], "")), legacy.TextOffset[i])
	}
	plain := complete(t, c, url, "/v1/completions", `{"prompt":"Once","max_tokens":2}`)
	require.Equal(t, "null", string(plain.Choices[0].Logprobs))
}

func toBytes(b []int) []byte {
	out := make([]byte, len(b))
	for i, v := range b {
		out[i] = byte(v)
	}
	return out
}

// TestServeSamplingFields: logit_bias and the penalties reach the sampler.
func TestServeSamplingFields(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)
	id := s.tok.Encode("dog", false, false)
	tokenID := id[len(id)-1]
	out := complete(t, c, url, "/v1/completions", fmt.Sprintf(`{"prompt":"The","temperature":0,"max_tokens":4,"logit_bias":{"%d":100}}`, tokenID))
	require.Equal(t, strings.Repeat(s.tok.Decode(0, tokenID), 4), out.text())
	greedy := complete(t, c, url, "/v1/completions", `{"prompt":"Once upon a time","temperature":0,"max_tokens":40}`).text()
	penalised := complete(t, c, url, "/v1/completions", `{"prompt":"Once upon a time","temperature":0,"max_tokens":40,"frequency_penalty":2,"presence_penalty":2}`).text()
	require.NotEqual(t, greedy, penalised)
	repeat := complete(t, c, url, "/v1/completions", `{"prompt":"Once upon a time","temperature":0,"max_tokens":40,"repeat_penalty":3,"repeat_last_n":-1}`).text()
	require.NotEqual(t, greedy, repeat)
	k1 := complete(t, c, url, "/v1/completions", `{"prompt":"Once upon a time","temperature":1.5,"top_k":1,"seed":9,"max_tokens":40}`).text()
	require.Equal(t, greedy, k1, "top_k 1 is greedy at any temperature")
}

const weatherTool = `{"type":"function","function":{"name":"get_weather","description":"The weather in a city",
	"parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":12},"unit":{"enum":["C","F"]}},"required":["city","unit"],"additionalProperties":false}}}`

// TestServeToolCalls: tool_choice required and a named function force a
// valid call (a 260K model knows nothing of tools), read back into
// tool_calls, streamed as deltas.
func TestServeToolCalls(t *testing.T) {
	for _, tmpl := range []string{"", hermesTemplate} {
		o := testOptions()
		o.ChatTemplate = tmpl
		s, _ := newTestServer(t, o, nil)
		url, c := startHTTP(t, s)
		for _, choice := range []string{`"required"`, `{"type":"function","function":{"name":"get_weather"}}`} {
			body := fmt.Sprintf(`{"messages":[{"role":"user","content":"Weather in Paris?"}],"seed":4,"temperature":1,"max_tokens":120,
				"tools":[%s,{"type":"function","function":{"name":"other","parameters":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}}}],"tool_choice":%s`, weatherTool, choice)
			full := complete(t, c, url, "/v1/chat/completions", body+"}")
			msg := full.Choices[0].Message
			require.Equal(t, "tool_calls", *full.Choices[0].FinishReason, "%+v", msg)
			require.Nil(t, msg.Content)
			require.Len(t, msg.ToolCalls, 1)
			call := msg.ToolCalls[0]
			require.Equal(t, "function", call.Type)
			require.Regexp(t, `^call_`, call.ID)
			if strings.HasPrefix(choice, "{") {
				require.Equal(t, "get_weather", call.Function.Name)
			}
			if call.Function.Name == "get_weather" {
				var args struct {
					City string `json:"city"`
					Unit string `json:"unit"`
				}
				dec := json.NewDecoder(strings.NewReader(call.Function.Arguments))
				dec.DisallowUnknownFields()
				require.NoError(t, dec.Decode(&args), call.Function.Arguments)
				require.Contains(t, []string{"C", "F"}, args.Unit)
			}

			events, done := stream(t, c, url, "/v1/chat/completions", body+`,"stream":true}`)
			require.True(t, done)
			var name, arguments, id string
			for _, ev := range events {
				if len(ev.Choices) == 0 || ev.Choices[0].Delta == nil {
					continue
				}
				for _, tc := range ev.Choices[0].Delta.ToolCalls {
					require.Equal(t, 0, *tc.Index)
					name += tc.Function.Name
					arguments += tc.Function.Arguments
					id += tc.ID
				}
			}
			require.Equal(t, "tool_calls", *events[len(events)-1].Choices[0].FinishReason)
			require.Equal(t, call.Function.Name, name)
			require.Equal(t, call.Function.Arguments, arguments)
			require.NotEmpty(t, id)
		}
		// tool_choice none: plain text.
		none := complete(t, c, url, "/v1/chat/completions", fmt.Sprintf(
			`{"messages":[{"role":"user","content":"hi"}],"max_tokens":10,"tools":[%s],"tool_choice":"none"}`, weatherTool))
		require.NotNil(t, none.Choices[0].Message.Content)
		require.Empty(t, none.Choices[0].Message.ToolCalls)
	}
}

// hermesTemplate writes tools and tool turns as Hermes-style templates do.
const hermesTemplate = `{% for m in messages %}<|{{ m.role }}|>{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}}</tool_call>{% endfor %}{% elif m.role == 'tool' %}<tool_response id={{ m.tool_call_id }}>{{ m.content }}</tool_response>{% else %}{{ m.content }}{% endif %}
{% endfor %}{% if tools %}tools: {% for t in tools %}{{ t.function.name }};{% endfor %}{% endif %}{% if add_generation_prompt %}<|assistant|>{% endif %}`

// TestToolFormats: the format follows the template, and each format's
// answers read back into calls.
func TestToolFormats(t *testing.T) {
	ts := &toolSetup{names: []string{"f"}}
	for _, tc := range []struct {
		format toolFormat
		text   string
		ok     bool
		args   string
	}{
		{toolJSON, `{"name": "f", "parameters": {"a": 1}}`, true, `{"a":1}`},
		{toolJSON, `<|python_tag|>{"name": "f", "arguments": {"b": [1, 2]}}`, true, `{"b":[1,2]}`},
		{toolJSON, `{"name": "g", "parameters": {}}`, false, ""},
		{toolJSON, `Sure! {"name": "f", "parameters": {}}`, false, ""},
		{toolJSON, `{"name": "f", "parameters": "x"}`, false, ""},
		{toolHermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"c\": true}}\n</tool_call>", true, `{"c":true}`},
		{toolHermes, "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>", true, `{}`},
		{toolHermes, `{"name": "f", "arguments": {}}`, false, ""},
		{toolMistral, `[TOOL_CALLS][{"name": "f", "arguments": {"d": "x"}}]`, true, `{"d":"x"}`},
		{toolMistral, `[{"name": "f", "arguments": {}}]`, true, `{}`},
	} {
		ts.format = tc.format
		calls, ok := ts.parseCalls(tc.text)
		require.Equal(t, tc.ok, ok, tc.text)
		if ok {
			require.Equal(t, "f", calls[0].Function.Name)
			require.Equal(t, tc.args, calls[0].Function.Arguments)
		}
	}
	s := newGGUFServer(t, hermesTemplate)
	require.Equal(t, toolHermes, s.tools)
	require.Equal(t, toolMistral, newGGUFServer(t, `{{ '[TOOL_CALLS]' }}`).tools)
	require.Equal(t, toolJSON, newGGUFServer(t, `{{ messages[0].content }}`).tools)
}

// TestToolMessagesReachTheTemplate: tools, an assistant's tool_calls and a
// tool's answer (role tool, tool_call_id) go through the template.
func TestToolMessagesReachTheTemplate(t *testing.T) {
	s := newGGUFServer(t, hermesTemplate)
	url, c := startHTTP(t, s)
	status, b := post(t, c, url+"/apply-template", `{"messages":[
		{"role":"user","content":"Weather?"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
		{"role":"tool","tool_call_id":"c1","content":"sunny"}],"tools":[`+weatherTool+`]}`)
	require.Equal(t, http.StatusOK, status, "%s", b)
	var out struct{ Prompt string }
	require.NoError(t, json.Unmarshal(b, &out))
	// (trim_blocks eats the newline after each endif.)
	require.Equal(t, "<|user|>Weather?<|assistant|><tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}</tool_call><|tool|><tool_response id=c1>sunny</tool_response>tools: get_weather;<|assistant|>", out.Prompt)
	status, b = post(t, c, url+"/v1/chat/completions", `{"messages":[{"role":"tool","content":"x"}],"max_tokens":1}`)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, string(b), "messages[0].tool_call_id")
}

// TestRoleOrderPolicyShared: for a llama2.c checkpoint, /apply-template and
// /v1/chat/completions accept and refuse the same orders of roles (issue 30).
func TestRoleOrderPolicyShared(t *testing.T) {
	s, _ := newTestServer(t, testOptions(), nil)
	url, c := startHTTP(t, s)
	for _, tc := range []struct {
		msgs  string
		param string // "" when accepted
	}{
		{`[{"role":"user","content":"a"}]`, ""},
		{`[{"role":"developer","content":"s"},{"role":"user","content":"a"}]`, ""},
		{`[{"role":"system","content":"s"},{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]`, ""},
		{`[{"role":"assistant","content":"a"}]`, "messages[0].role"},
		{`[{"role":"user","content":"a"},{"role":"user","content":"b"}]`, "messages[1].role"},
		{`[{"role":"user","content":"a"},{"role":"system","content":"b"}]`, "messages[1].role"},
		{`[{"role":"system","content":"s"},{"role":"system","content":"s"}]`, "messages[1].role"},
		{`[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]`, "messages"},
		{`[{"role":"user","content":"a"},{"role":"ipython","content":"b"}]`, "messages[1].role"},
		{`[{"role":"tool","content":"b","tool_call_id":"x"}]`, "messages[0].role"},
	} {
		chatStatus, chatBody := post(t, c, url+"/v1/chat/completions", `{"max_tokens":1,"messages":`+tc.msgs+`}`)
		tmplStatus, tmplBody := post(t, c, url+"/apply-template", `{"messages":`+tc.msgs+`}`)
		want := http.StatusOK
		if tc.param != "" {
			want = http.StatusBadRequest
			require.Contains(t, string(chatBody), `"param":"`+tc.param+`"`, tc.msgs)
			require.Contains(t, string(tmplBody), `"param":"`+tc.param+`"`, tc.msgs)
		}
		require.Equal(t, want, chatStatus, "%s: %s", tc.msgs, chatBody)
		require.Equal(t, want, tmplStatus, "%s: %s", tc.msgs, tmplBody)
	}
	// Without a generation prompt, a chat may end with the assistant.
	status, b := post(t, c, url+"/apply-template", `{"add_generation_prompt":false,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`)
	require.Equal(t, http.StatusOK, status, "%s", b)
	require.True(t, bytes.Contains(b, []byte("[INST] a [/INST] b")), "%s", b)
}
