package grammar

import (
	"encoding/json"
	"testing"
)

// FuzzParse: any source compiles or fails with an error, and a compiled
// grammar's matcher runs over a small vocabulary without panicking.
func FuzzParse(f *testing.F) {
	for _, s := range []string{JSONGrammar, `root ::= "a"{2,5} [^b]* | root2`, "root ::= (\"x\" root)? \"y\"", `root ::= [\x00-\U0010FFFF]+`} {
		f.Add(s, []byte("ay{\"\\"))
	}
	toks := NewTokens(testVocab("", "a", "y", "{", "\"", "\\", "ab", "x y", "é"))
	f.Fuzz(func(t *testing.T, src string, walk []byte) {
		g, err := Parse(src)
		if err != nil {
			return
		}
		m := g.NewMatcher(toks)
		for _, b := range walk {
			m.Allowed()
			m.Accept(int(b) % toks.VocabSize())
		}
		g.Match(walk)
	})
}

// FuzzJSONSchema: any schema converts or fails with ErrSchema; what it
// converts to compiles, and documents it matches are valid JSON.
func FuzzJSONSchema(f *testing.F) {
	for _, tc := range schemaSuite {
		f.Add(tc.schema, []byte(tc.valid[0]))
	}
	f.Fuzz(func(t *testing.T, schema string, doc []byte) {
		src, err := JSONSchemaToGBNF([]byte(schema))
		if err != nil {
			return
		}
		g, err := Parse(src)
		if err != nil {
			t.Fatalf("the converter wrote a grammar that does not compile: %v\n%s", err, src)
		}
		if g.Match(doc) && !json.Valid(doc) {
			t.Fatalf("the grammar of %s matches %q, which is not JSON", schema, doc)
		}
	})
}
