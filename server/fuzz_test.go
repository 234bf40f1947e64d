package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzParseRequest feeds request bodies to the parsers of both generation
// endpoints and to /apply-template: a body is either refused with a 4xx
// naming what is wrong, or gives settings the scheduler can run (a prompt
// that fits the context, max_tokens within it, at most 4 stop strings).
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		`{"prompt":"Once upon a time","max_tokens":5,"temperature":0,"stop":["."],"stream":true,"stream_options":{"include_usage":true}}`,
		`{"prompt":[1,2,3],"seed":-1,"top_p":0.5}`,
		`{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_completion_tokens":3}`,
		`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}],"add_generation_prompt":false}`,
		`{"prompt":"` + strings.Repeat("a ", 600) + `"}`,
		`{"prompt":"x","n":2}`, `[]`, `{"prompt":"a"} {}`, `{"stop":["a","b","c","d","e"],"prompt":"p"}`, ``,
	} {
		f.Add([]byte(seed))
	}
	s, _ := newTestServer(f, testOptions(), nil)
	seqLen := s.model.Config.SeqLen
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, parse := range []struct {
			name string
			f    func(http.ResponseWriter, *http.Request) (genParams, *requestError)
		}{{"completions", s.parseCompletion}, {"chat", s.parseChat}} {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
			g, rerr := parse.f(w, r)
			if rerr != nil {
				if rerr.status < 400 || rerr.status > 499 || rerr.msg == "" || rerr.code == "" {
					t.Fatalf("%s: refused with %d %q (%q): %q", parse.name, rerr.status, rerr.msg, rerr.code, body)
				}
				continue
			}
			switch {
			case len(g.prompt) == 0 || len(g.prompt) > seqLen:
				t.Fatalf("%s: a prompt of %d tokens accepted (context %d): %q", parse.name, len(g.prompt), seqLen, body)
			case g.maxTokens < 1 || g.maxTokens > seqLen:
				t.Fatalf("%s: max tokens %d accepted: %q", parse.name, g.maxTokens, body)
			case len(g.stop) > maxStopStrings:
				t.Fatalf("%s: %d stop strings accepted: %q", parse.name, len(g.stop), body)
			}
			for _, id := range g.prompt {
				if id < 0 || id >= s.model.Config.VocabSize {
					t.Fatalf("%s: token %d accepted: %q", parse.name, id, body)
				}
			}
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("POST", "/apply-template", strings.NewReader(string(body))))
		if w.Code != http.StatusOK && (w.Code < 400 || w.Code > 499) || !json.Valid(w.Body.Bytes()) {
			t.Fatalf("/apply-template: %d %s: %q", w.Code, w.Body, body)
		}
	})
}
