package grammar

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/llama2-go/llama2/tokenizer"
	"github.com/stretchr/testify/require"
)

// schemaSuite: for each keyword, instances that validate (the grammar
// must match them, written as the grammar writes JSON: properties in the
// schema's order) and instances that do not (the grammar must not).
var schemaSuite = []struct {
	name   string
	schema string
	valid  []string
	bad    []string
}{
	{"type string", `{"type":"string"}`, []string{`"a"`, `""`, `"é\n\u00e9\"\\"`}, []string{`1`, `"a`, `null`, "\"\x01\""}},
	{"type number", `{"type":"number"}`, []string{`0`, `-1.5`, `3e10`, `2.0E-3`}, []string{`"1"`, `01`, `1.`, `.5`, `+1`}},
	{"type integer", `{"type":"integer"}`, []string{`0`, `-12`, `40`}, []string{`1.5`, `-0.1`, `01`, `"3"`}},
	{"type boolean", `{"type":"boolean"}`, []string{`true`, `false`}, []string{`1`, `"true"`, `null`}},
	{"type null", `{"type":"null"}`, []string{`null`}, []string{`0`, `false`}},
	{"type list", `{"type":["string","null"]}`, []string{`"x"`, `null`}, []string{`1`, `{}`}},
	{"type object", `{"type":"object"}`, []string{`{}`, `{"a": 1, "b": [true, null]}`}, []string{`[]`, `{"a"}`, `{"a":1,}`}},
	{"type array", `{"type":"array"}`, []string{`[]`, `[1, "a", {}]`}, []string{`{}`, `[1,]`}},
	{"empty schema", `{}`, []string{`1`, `"a"`, `[{}]`, `null`}, []string{`nul`}},
	{"true schema", `true`, []string{`{"x": []}`}, []string{`[`}},
	{"properties required", `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}`,
		[]string{`{"name":"Ann","age":3}`, `{ "name": "Bo", "age": -1 }`}, []string{`{"name":"Ann"}`, `{"age":3}`, `{"name":3,"age":3}`, `{}`}},
	{"optional properties", `{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"required":["b"]}`,
		[]string{`{"b":"x"}`, `{"a":1,"b":"x"}`, `{"b":"x","c":true}`, `{"a":1,"b":"x","c":false}`}, []string{`{}`, `{"a":1}`, `{"a":1,"c":true}`, `{"b":1}`}},
	{"all optional", `{"properties":{"a":{"type":"integer"},"b":{"type":"integer"}}}`,
		[]string{`{}`, `{"a":1}`, `{"b":2}`, `{"a":1,"b":2}`}, []string{`{"a":"x"}`, `{"b":true}`}},
	{"additionalProperties false", `{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":false}`,
		[]string{`{}`, `{"a":1}`}, []string{`{"b":1}`, `{"a":1,"b":2}`}},
	{"additionalProperties schema", `{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"string"}}`,
		[]string{`{"a":1,"b":"x"}`, `{"b":"x","ab":"y"}`, `{"":"z"}`, `{"a\u0041":"q"}`}, []string{`{"b":1}`, `{"a":"x"}`}},
	{"enum", `{"enum":["red","green",3,null,{"k":[1]}]}`, []string{`"red"`, `3`, `null`, `{"k":[1]}`}, []string{`"blue"`, `4`, `"Red"`}},
	{"const", `{"const":"<b>&"}`, []string{`"<b>&"`}, []string{`"x"`}},
	{"items", `{"type":"array","items":{"type":"integer"}}`, []string{`[]`, `[1, 2, 3]`}, []string{`["a"]`, `[1, "a"]`}},
	{"minItems maxItems", `{"type":"array","items":{"type":"boolean"},"minItems":1,"maxItems":2}`,
		[]string{`[true]`, `[true,false]`}, []string{`[]`, `[true,true,true]`}},
	{"maxItems 0", `{"type":"array","maxItems":0}`, []string{`[]`}, []string{`[1]`}},
	{"minItems only", `{"type":"array","minItems":2}`, []string{`[1,2]`, `[1,2,3,4]`}, []string{`[1]`, `[]`}},
	{"prefixItems", `{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}]}`, []string{`["a", 1]`}, []string{`[1, "a"]`, `[1]`}},
	{"anyOf", `{"anyOf":[{"type":"string"},{"type":"integer","minimum":5}]}`, []string{`"x"`, `5`, `99`}, []string{`4`, `true`}},
	{"oneOf", `{"oneOf":[{"type":"boolean"},{"type":"null"}]}`, []string{`true`, `null`}, []string{`0`}},
	{"$defs ref", `{"$defs":{"pos":{"type":"integer","minimum":1}},"type":"object","properties":{"p":{"$ref":"#/$defs/pos"}},"required":["p"]}`,
		[]string{`{"p":1}`, `{"p":900}`}, []string{`{"p":0}`, `{"p":-3}`}},
	{"definitions recursive ref", `{"definitions":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/definitions/node"},{"type":"null"}]}},"required":["v","next"]}},"$ref":"#/definitions/node"}`,
		[]string{`{"v":1,"next":null}`, `{"v":1,"next":{"v":2,"next":null}}`}, []string{`{"v":1}`, `{"v":1,"next":{"v":2}}`}},
	{"minLength maxLength", `{"type":"string","minLength":2,"maxLength":3}`, []string{`"ab"`, `"abc"`, `"é☕"`, `"\n\t"`}, []string{`"a"`, `"abcd"`}},
	{"minLength only", `{"type":"string","minLength":1}`, []string{`"a"`, `"abcdef"`}, []string{`""`}},
	{"minimum maximum", `{"type":"integer","minimum":-15,"maximum":120}`, []string{`-15`, `0`, `7`, `99`, `120`}, []string{`-16`, `121`, `1000`, `-100`}},
	{"exclusive bounds", `{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10}`, []string{`1`, `9`}, []string{`0`, `10`}},
	{"fractional bounds", `{"type":"integer","minimum":1.5,"maximum":3.5}`, []string{`2`, `3`}, []string{`1`, `4`}},
	{"minimum only", `{"type":"integer","minimum":95}`, []string{`95`, `100`, `123456`}, []string{`94`, `5`, `-95`}},
	{"maximum only", `{"type":"integer","maximum":-7}`, []string{`-7`, `-10`, `-123456`}, []string{`-6`, `0`, `7`}},
	{"format date", `{"type":"string","format":"date"}`, []string{`"2024-12-07"`, `"1999-02-28"`, `"2000-04-30"`}, []string{`"2024-13-01"`, `"2024-04-31"`, `"24-01-01"`, `"2024-02-30"`}},
	{"format time", `{"type":"string","format":"time"}`, []string{`"23:59:59Z"`, `"08:00:00.5+02:00"`}, []string{`"24:00:00Z"`, `"12:00"`, `"12:60:00Z"`}},
	{"format date-time", `{"type":"string","format":"date-time"}`, []string{`"2024-01-31T10:20:30Z"`}, []string{`"2024-01-31 10:20:30Z"`}},
	{"format uuid", `{"type":"string","format":"uuid"}`, []string{`"123e4567-e89b-12d3-a456-426614174000"`}, []string{`"123e4567e89b12d3a456426614174000"`, `"g23e4567-e89b-12d3-a456-426614174000"`}},
	{"annotations", `{"title":"T","description":"d","default":1,"examples":[1],"$schema":"x","type":"integer"}`, []string{`1`}, []string{`"1"`}},
	{"nested", `{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string","maxLength":4}},"meta":{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}},"required":["tags","meta"],"additionalProperties":false}`,
		[]string{`{"tags":["a","bcd"],"meta":{"ok":true}}`, `{"tags":[],"meta":{"ok":false}}`}, []string{`{"tags":["abcde"],"meta":{"ok":true}}`, `{"tags":[],"meta":{}}`}},
}

func TestSchemaSuite(t *testing.T) {
	for _, tc := range schemaSuite {
		g, err := FromJSONSchema([]byte(tc.schema))
		require.NoError(t, err, tc.name)
		for _, v := range tc.valid {
			require.NoError(t, validate([]byte(tc.schema), []byte(v)), "%s: the reference rejects %s", tc.name, v)
			require.True(t, g.Match([]byte(v)), "%s: the grammar rejects %s\n%s", tc.name, v, g)
		}
		for _, v := range tc.bad {
			if json.Valid([]byte(v)) {
				require.Error(t, validate([]byte(tc.schema), []byte(v)), "%s: the reference accepts %s", tc.name, v)
			}
			require.False(t, g.Match([]byte(v)), "%s: the grammar accepts %s", tc.name, v)
		}
	}
}

func TestSchemaErrors(t *testing.T) {
	for _, tc := range []struct{ schema, keyword, path string }{
		{`{"type":"string","pattern":"^a"}`, "pattern", "/pattern"},
		{`{"allOf":[{"type":"string"}]}`, "allOf", "/allOf"},
		{`{"type":"array","uniqueItems":true}`, "uniqueItems", "/uniqueItems"},
		{`{"type":"object","minProperties":1}`, "minProperties", "/minProperties"},
		{`{"type":"number","multipleOf":2}`, "multipleOf", "/multipleOf"},
		{`{"type":"object","properties":{"a":{"type":"string","format":"email"}}}`, "format", "/properties/a/format"},
		{`{"type":"number","minimum":1}`, "minimum", "/minimum"},
		{`{"type":"string","minimum":1}`, "minimum", "/minimum"},
		{`{"type":"integer","maxLength":1}`, "maxLength", "/maxLength"},
		{`{"type":"strin"}`, "type", "/type"},
		{`{"type":[]}`, "type", "/type"},
		{`{"enum":[]}`, "enum", "/enum"},
		{`{"$ref":"#/$defs/missing"}`, "$ref", "/$ref"},
		{`{"$ref":"http://example.com/s.json"}`, "$ref", "/$ref"},
		{`{"$ref":"#/$defs/a","type":"string","$defs":{"a":{}}}`, "type", "/type"},
		{`{"type":"string","minLength":5,"maxLength":2}`, "maxLength", "/maxLength"},
		{`{"type":"string","maxLength":-1}`, "maxLength", "/maxLength"},
		{`{"type":"string","maxLength":1e9}`, "maxLength", "/maxLength"},
		{`{"type":"integer","minimum":5,"maximum":4}`, "minimum", ""},
		{`{"type":"integer","minimum":1e300}`, "minimum", "/minimum"},
		{`{"type":"object","properties":{"a":false}}`, "", "/properties/a"},
		{`{"anyOf":{}}`, "anyOf", "/anyOf"},
		{`[1]`, "", ""},
		{`{"type":`, "", ""},
		{`{"a":1,"a":2}`, "", ""},
	} {
		_, err := FromJSONSchema([]byte(tc.schema))
		require.ErrorIs(t, err, ErrSchema, tc.schema)
		var se *SchemaError
		require.True(t, errors.As(err, &se), tc.schema)
		require.Equal(t, tc.keyword, se.Keyword, tc.schema)
		require.Equal(t, tc.path, se.Path, "%s: %v", tc.schema, err)
		if tc.keyword != "" {
			require.ErrorContains(t, err, tc.keyword)
		}
	}
}

// TestIntRange checks every integer near the bounds of random ranges.
func TestIntRange(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for trial := range 150 {
		var lo, hi *int64
		span := []int64{10, 1000, 100000}[trial%3]
		a, b := r.Int64N(2*span)-span, r.Int64N(2*span)-span
		if a > b {
			a, b = b, a
		}
		if trial%4 != 0 {
			lo = &a
		}
		if trial%4 != 1 {
			hi = &b
		}
		g, err := Parse("root ::= " + intRange(lo, hi))
		require.NoError(t, err)
		check := func(x int64) {
			in := (lo == nil || x >= *lo) && (hi == nil || x <= *hi)
			require.Equal(t, in, g.Match([]byte(strconv.FormatInt(x, 10))), "%d in [%v, %v]", x, lo, hi)
		}
		for _, c := range []int64{a, b, 0} {
			for x := c - 30; x <= c+30; x++ {
				check(x)
			}
		}
		for range 200 {
			check(r.Int64N(4*span) - 2*span)
		}
		require.False(t, g.Match([]byte("0"+strconv.FormatInt(a, 10))) && a > 0, "no leading zeros")
	}
}

// TestSchemaOutputsValidate is the property test: random walks under each
// schema's grammar, through a synthetic byte-level vocabulary and
// llama2.c's, end in documents that parse and validate.
func TestSchemaOutputsValidate(t *testing.T) {
	vocabs := []*Tokens{NewTokens(syntheticVocab(4000, 9))}
	tok, err := tokenizer.Load(fixture(t, "tokenizer.bin"), 0)
	require.NoError(t, err)
	vocabs = append(vocabs, NewTokens(tok))
	for _, tc := range schemaSuite {
		g, err := FromJSONSchema([]byte(tc.schema))
		require.NoError(t, err)
		done := 0
		for seed := range 40 {
			r := rand.New(rand.NewPCG(uint64(seed), 5))
			out, ok := walkGrammar(t, g, vocabs[seed%2], r, 300, seed < 2)
			if !ok {
				continue
			}
			done++
			require.True(t, json.Valid(out), "%s: %q", tc.name, out)
			require.NoError(t, validate([]byte(tc.schema), out), "%s: %q", tc.name, out)
		}
		require.Greater(t, done, 5, "%s: too few walks ended", tc.name)
	}
}

func ExampleFromJSONSchema() {
	g, err := FromJSONSchema([]byte(`{"type":"object","properties":{"n":{"type":"integer","minimum":1,"maximum":3}},"required":["n"]}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(g.Match([]byte(`{"n": 2}`)), g.Match([]byte(`{"n": 4}`)))
	// Output: true false
}
