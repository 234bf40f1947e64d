package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTinyTemperatureIsGreedy: -t 1e-40 printed token 0 forever (issue 30,
// defect 6); now it is the greedy story, and -t 1e39 samples.
func TestTinyTemperatureIsGreedy(t *testing.T) {
	model, tok := fixture(t, "stories260K.bin"), fixture(t, "tok512.bin")
	_, greedy, _ := runCLI(t, "", model, "-z", tok, "-i", "Lily", "-t", "0", "-n", "40")
	for _, temp := range []string{"1e-40", "1e-45", "1e-38"} {
		code, out, _ := runCLI(t, "", model, "-z", tok, "-i", "Lily", "-t", temp, "-n", "40", "-s", "5")
		require.Equal(t, 0, code)
		require.Equal(t, greedy, out, "-t %s", temp)
	}
	code, out, _ := runCLI(t, "", model, "-z", tok, "-i", "Lily", "-t", "1e39", "-n", "40", "-s", "5")
	require.Equal(t, 0, code)
	require.NotEqual(t, greedy, out)
}

func TestJSONSchemaFlag(t *testing.T) {
	model, tok := fixture(t, "stories260K.bin"), fixture(t, "tok512.bin")
	schema := `{"type":"object","properties":{"name":{"type":"string","maxLength":10},"age":{"type":"integer","minimum":1,"maximum":9}},"required":["name","age"],"additionalProperties":false}`
	file := filepath.Join(t.TempDir(), "schema.json")
	require.NoError(t, os.WriteFile(file, []byte(schema), 0o644))
	for _, arg := range []string{schema, file} {
		for _, seed := range []string{"1", "2", "3"} {
			code, out, errOut := runCLI(t, "", model, "-z", tok, "-i", "Lily", "-json-schema", arg, "-n", "120", "-s", seed, "-t", "1")
			require.Equal(t, 0, code, errOut)
			text := strings.TrimSpace(strings.TrimPrefix(out, "Lily"))
			var v struct {
				Name string `json:"name"`
				Age  int    `json:"age"`
			}
			dec := json.NewDecoder(strings.NewReader(text))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&v), "%q", out)
			require.True(t, v.Age >= 1 && v.Age <= 9 && len(v.Name) <= 10, "%q", out)
		}
	}
	g := filepath.Join(t.TempDir(), "yes.gbnf")
	require.NoError(t, os.WriteFile(g, []byte(`root ::= "yes" | "no"`), 0o644))
	code, out, _ := runCLI(t, "", model, "-z", tok, "-i", "Q:", "-grammar-file", g, "-n", "30", "-top-k", "3")
	require.Equal(t, 0, code)
	require.Regexp(t, `^Q:(yes|no)\n$`, out)
}

func TestChainFlagErrors(t *testing.T) {
	model, tok := fixture(t, "stories260K.bin"), fixture(t, "tok512.bin")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-top-k", "-1"}, "-top-k -1"},
		{[]string{"-min-p", "2"}, "-min-p 2"},
		{[]string{"-repeat-penalty", "0"}, "-repeat-penalty 0"},
		{[]string{"-t", "NaN"}, "-t NaN"},
		{[]string{"-grammar-file", "/nonexistent.gbnf"}, "-grammar-file"},
		{[]string{"-json-schema", `{"type":"string","pattern":"x"}`}, `keyword "pattern"`},
		{[]string{"-json-schema", `{"type":`}, "-json-schema (inline)"},
		{[]string{"-json-schema", `{}`, "-grammar-file", "x"}, "cannot be combined"},
		{[]string{"-json-schema", `{}`, "-m", "chat"}, "generate mode"},
	} {
		code, _, errOut := runCLI(t, "", append([]string{model, "-z", tok, "-n", "5"}, tc.args...)...)
		require.Equal(t, 1, code, tc.args)
		require.Contains(t, errOut, tc.msg, tc.args)
	}
}
