package server

// Tool calls: the tools go to the chat template, and the model's output is
// read back into tool_calls in the format the template teaches the model.
// tool_choice "required" or a named function forces a grammar, so even a
// weak model writes a call that matches a function's parameter schema.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/llama2-go/llama2/chat"
	"github.com/llama2-go/llama2/grammar"
)

// toolFormat is how a model writes its tool calls.
type toolFormat uint8

const (
	// toolJSON is Llama 3.x's: the whole answer is
	// {"name": "f", "parameters": {...}}, maybe after <|python_tag|>.
	// Templates without a format of their own (and llama2.c checkpoints)
	// get it too.
	toolJSON toolFormat = iota
	// toolHermes is Hermes' and Qwen2.5's:
	// <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>.
	toolHermes
	// toolMistral is Mistral's: [TOOL_CALLS][{"name": "f", "arguments": {...}}].
	toolMistral
)

func (f toolFormat) String() string {
	return [...]string{"llama3-json", "hermes", "mistral"}[f]
}

// detectToolFormat picks the format from the template's text.
func detectToolFormat(t *chat.Template) toolFormat {
	if t == nil {
		return toolJSON
	}
	src := t.Source()
	switch {
	case strings.Contains(src, "<tool_call>"):
		return toolHermes
	case strings.Contains(src, "[TOOL_CALLS]"):
		return toolMistral
	}
	return toolJSON
}

// argsKey is the key of a call's arguments in the format.
func (f toolFormat) argsKey() string {
	if f == toolJSON {
		return "parameters"
	}
	return "arguments"
}

// around is the text a forced call is written between.
func (f toolFormat) around() (prefix, suffix string) {
	switch f {
	case toolHermes:
		return "<tool_call>\n", "\n</tool_call>"
	case toolMistral:
		return "[TOOL_CALLS][", "]"
	}
	return "", ""
}

// markers are what an answer that is a tool call begins with.
func (f toolFormat) markers() []string {
	switch f {
	case toolHermes:
		return []string{"<tool_call>"}
	case toolMistral:
		// [TOOL_CALLS] is a control token in Mistral's vocabularies, which
		// decodes to nothing: the array alone starts a call too.
		return []string{"[TOOL_CALLS]", "[{"}
	}
	return []string{"{", "<|python_tag|>"}
}

// toolSetup is what a chat request's tools ask of the generation.
type toolSetup struct {
	format toolFormat
	names  []string
	forced *grammar.Grammar // tool_choice required or a named function
}

var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// parseTools checks tools and tool_choice. It returns the setup (nil when
// no call is to be read back) and the tools for the template.
func (s *Server) parseTools(req *chatRequest, constrained bool) (*toolSetup, []any, *requestError) {
	choice, named, err := parseToolChoice(req.ToolChoice)
	if err != nil {
		return nil, nil, err
	}
	if len(req.Tools) == 0 {
		if choice == "required" || named != "" {
			return nil, nil, badRequest("invalid_value", "tool_choice", "tool_choice %s needs tools", req.ToolChoice)
		}
		return nil, nil, nil
	}
	ts := &toolSetup{format: s.tools}
	names, schemas, tmpl, err := s.toolDefs(req.Tools)
	if err != nil {
		return nil, nil, err
	}
	ts.names = names
	if named != "" && !slices.Contains(ts.names, named) {
		return nil, nil, badRequest("invalid_value", "tool_choice", "tool_choice names function %q, which is not among the tools", named)
	}
	switch {
	case choice == "none":
		return nil, nil, nil
	case constrained:
		return nil, nil, badRequest("invalid_value", "tools", "tools cannot be combined with response_format or grammar (tool_choice none can)")
	case choice == "required" || named != "":
		names := ts.names
		if named != "" {
			names = []string{named}
		}
		g, err := s.callGrammar(ts.format, names, schemas)
		if err != nil {
			return nil, nil, badRequest("invalid_value", "tools", "%v", err)
		}
		ts.forced = g
	}
	return ts, tmpl, nil
}

// toolDefs checks tool definitions and returns their names, parameter
// schemas, and the definitions for the template.
func (s *Server) toolDefs(tools []json.RawMessage) (names []string, schemas map[string]json.RawMessage, tmpl []any, err *requestError) {
	schemas = map[string]json.RawMessage{}
	for i, raw := range tools {
		param := fmt.Sprintf("tools[%d]", i)
		var t toolDef
		if rerr := decodeStrict(raw, &t, param); rerr != nil {
			return nil, nil, nil, rerr
		}
		if t.Type != "function" {
			return nil, nil, nil, badRequest("invalid_value", param+".type", "tool type %q is not supported (function)", t.Type)
		}
		f := t.Function
		if !toolName.MatchString(f.Name) {
			return nil, nil, nil, badRequest("invalid_value", param+".function.name", "function names are 1 to 64 of a-z, A-Z, 0-9, _ and -; got %q", f.Name)
		}
		if slices.Contains(names, f.Name) {
			return nil, nil, nil, badRequest("invalid_value", param+".function.name", "function %q is defined twice", f.Name)
		}
		params := f.Parameters
		if isNull(params) {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		if _, err := s.grammars.schema(params); err != nil {
			return nil, nil, nil, badRequest("invalid_value", param+".function.parameters", "%v", err)
		}
		tmpl = append(tmpl, raw) // as the client sent it: |tojson keeps its keys' order
		names = append(names, f.Name)
		schemas[f.Name] = params
	}
	return names, schemas, tmpl, nil
}

// parseToolChoice reads "none", "auto", "required" or
// {"type": "function", "function": {"name": ...}}.
func parseToolChoice(raw json.RawMessage) (choice, named string, err *requestError) {
	if isNull(raw) {
		return "auto", "", nil
	}
	if json.Unmarshal(raw, &choice) == nil {
		switch choice {
		case "none", "auto", "required":
			return choice, "", nil
		}
		return "", "", badRequest("invalid_value", "tool_choice", "tool_choice must be none, auto, required or a function, got %q", choice)
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if e := json.Unmarshal(raw, &obj); e != nil || obj.Type != "function" || obj.Function.Name == "" {
		return "", "", badRequest("invalid_value", "tool_choice", `tool_choice must be none, auto, required or {"type": "function", "function": {"name": ...}}`)
	}
	return "", obj.Function.Name, nil
}

// callGrammar is the grammar of one call of one of the functions, in the
// format's markers.
func (s *Server) callGrammar(f toolFormat, names []string, schemas map[string]json.RawMessage) (*grammar.Grammar, error) {
	defs := map[string]json.RawMessage{}
	var alts []string
	for _, name := range names {
		params := schemas[name]
		// The parameters' definitions move to the top, where their $refs
		// (#/$defs/x) point once the schema is nested.
		var top map[string]json.RawMessage
		if json.Unmarshal(params, &top) == nil {
			for _, k := range []string{"$defs", "definitions"} {
				var d map[string]json.RawMessage
				if json.Unmarshal(top[k], &d) != nil {
					continue
				}
				for dn, dv := range d {
					key := k + "/" + dn
					if old, ok := defs[key]; ok && !bytes.Equal(old, dv) {
						return nil, fmt.Errorf("the tools define %s/%s differently", k, dn)
					}
					defs[key] = dv
				}
			}
		}
		nameJSON, _ := json.Marshal(name)
		alts = append(alts, fmt.Sprintf(`{"type":"object","properties":{"name":{"const":%s},%q:%s},"required":["name",%q],"additionalProperties":false}`,
			nameJSON, f.argsKey(), params, f.argsKey()))
	}
	schema := `{"anyOf":[` + strings.Join(alts, ",") + `]`
	groups := map[string][]string{}
	for key, v := range defs {
		k, dn, _ := strings.Cut(key, "/")
		dnJSON, _ := json.Marshal(dn)
		groups[k] = append(groups[k], string(dnJSON)+":"+string(v))
	}
	for k, entries := range groups {
		slices.Sort(entries)
		schema += fmt.Sprintf(`,%q:{%s}`, k, strings.Join(entries, ","))
	}
	schema += "}"
	prefix, suffix := f.around()
	return s.grammars.get("call\x00"+f.String()+"\x00"+schema, func() (*grammar.Grammar, error) {
		src, err := grammar.JSONSchemaToGBNFAround([]byte(schema), prefix, suffix)
		if err != nil {
			return nil, err
		}
		return grammar.Parse(src)
	})
}

// mayBeCall reports whether text, the start of an answer, can still turn
// out to be a tool call: it is a prefix of a marker or begins with one.
func (ts *toolSetup) mayBeCall(text string) bool {
	t := strings.TrimLeft(text, " \t\r\n")
	for _, m := range ts.format.markers() {
		if strings.HasPrefix(t, m) || strings.HasPrefix(m, t) {
			return true
		}
	}
	return false
}

var hermesCall = regexp.MustCompile(`(?s)<tool_call>\s*(.*?)\s*(?:</tool_call>|$)`)

// parseCalls reads the tool calls an answer consists of; ok is false when
// it is not (only) calls of known functions.
func (ts *toolSetup) parseCalls(text string) (calls []toolCall, ok bool) {
	t := strings.TrimSpace(text)
	var objs []string
	switch ts.format {
	case toolHermes:
		if !strings.HasPrefix(t, "<tool_call>") {
			return nil, false
		}
		rest := t
		for _, m := range hermesCall.FindAllStringSubmatchIndex(t, -1) {
			objs = append(objs, t[m[2]:m[3]])
			rest = strings.Replace(rest, t[m[0]:m[1]], "", 1)
		}
		if strings.TrimSpace(rest) != "" {
			return nil, false
		}
	case toolMistral:
		t = strings.TrimSpace(strings.TrimPrefix(t, "[TOOL_CALLS]"))
		var arr []json.RawMessage
		if json.Unmarshal([]byte(t), &arr) != nil {
			return nil, false
		}
		for _, a := range arr {
			objs = append(objs, string(a))
		}
	default:
		t = strings.TrimSpace(strings.TrimPrefix(t, "<|python_tag|>"))
		var arr []json.RawMessage
		if json.Unmarshal([]byte(t), &arr) == nil {
			for _, a := range arr {
				objs = append(objs, string(a))
			}
		} else {
			objs = []string{t}
		}
	}
	if len(objs) == 0 {
		return nil, false
	}
	for _, o := range objs {
		var call map[string]json.RawMessage
		if json.Unmarshal([]byte(o), &call) != nil {
			return nil, false
		}
		var name string
		if json.Unmarshal(call["name"], &name) != nil || !slices.Contains(ts.names, name) {
			return nil, false
		}
		args, found := call["arguments"]
		if !found {
			args, found = call["parameters"]
		}
		var obj map[string]any
		if !found || json.Unmarshal(args, &obj) != nil || obj == nil {
			return nil, false
		}
		var compact bytes.Buffer
		json.Compact(&compact, args) // the model's order of keys
		calls = append(calls, toolCall{ID: "call_" + strings.ToLower(rand.Text()[:24]), Type: "function",
			Function: functionCall{Name: name, Arguments: compact.String()}})
	}
	return calls, true
}
