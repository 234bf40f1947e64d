package grammar

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// The JSON Schema converter: a schema becomes GBNF whose sentences are the
// JSON documents that validate against it (with the limits below). A
// keyword it does not support is an error naming it, never ignored.
//
// Supported: type (object, array, string, number, integer, boolean, null,
// and lists of them), properties, required, additionalProperties (false,
// true or a schema), enum, const, items, prefixItems, minItems, maxItems,
// anyOf, oneOf (as anyOf: the branches should not overlap), $ref to
// #/$defs/... or #/definitions/..., minLength, maxLength, minimum, maximum,
// exclusiveMinimum and exclusiveMaximum for integers, and format date,
// time, date-time and uuid. Annotations (title, description, default,
// examples, $schema, $id, $comment, deprecated, readOnly, writeOnly) are
// ignored.
//
// The output: properties in the order the schema lists them (the optional
// ones may be left out), whitespace limited to one space or one or two
// newlines and 20 blanks between tokens, integers of at most 16 digits
// unless bounds say otherwise, dates whose day exists in every year
// (February stops at 28).

// JSONGrammar is the grammar of any JSON object (OpenAI's
// response_format {"type": "json_object"}).
const JSONGrammar = `root ::= object
` + jsonPrimitives

const jsonPrimitives = `value ::= object | array | string | number | boolean | null
object ::= "{" space ( string ":" space value ( "," space string ":" space value )* )? "}" space
array ::= "[" space ( value ( "," space value )* )? "]" space
` + scalarPrimitives

const scalarPrimitives = `space ::= | " " | "\n" "\n"? [ \t]{0,20}
boolean ::= ( "true" | "false" ) space
null ::= "null" space
char ::= [^"\\\x7F\x00-\x1F] | [\\] ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
string ::= "\"" char* "\"" space
integral-part ::= [0] | [1-9] [0-9]{0,15}
decimal-part ::= [0-9]{1,16}
number ::= "-"? integral-part ( "." decimal-part )? ( [eE] [-+]? integral-part )? space
integer ::= "-"? integral-part space
`

var formats = map[string]string{
	"date": `[0-9]{4} "-" ( ( "0" [13578] | "1" [02] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ) | ( "0" [469] | "11" ) "-" ( "0" [1-9] | [12] [0-9] | "30" ) | "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) )`,
	"time": `( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )`,
	"uuid": `[0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12}`,
}

func init() {
	formats["date-time"] = formats["date"] + ` "T" ` + formats["time"]
}

// annotations are keywords that do not constrain the instance.
var annotations = map[string]bool{
	"title": true, "description": true, "default": true, "examples": true, "$schema": true,
	"$id": true, "$comment": true, "deprecated": true, "readOnly": true, "writeOnly": true,
	"$defs": true, "definitions": true,
}

// known are the keywords the converter reads.
var known = map[string]bool{
	"type": true, "properties": true, "required": true, "additionalProperties": true,
	"enum": true, "const": true, "items": true, "prefixItems": true, "minItems": true, "maxItems": true,
	"anyOf": true, "oneOf": true, "$ref": true, "minLength": true, "maxLength": true,
	"minimum": true, "maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true, "format": true,
}

// SchemaError is a schema the converter cannot use: where (a JSON pointer
// into the schema) and why. It matches ErrSchema.
type SchemaError struct {
	Path    string // e.g. /properties/name
	Keyword string // the keyword at fault, if one is
	Msg     string
}

func (e *SchemaError) Error() string {
	path := e.Path
	if path == "" {
		path = "/"
	}
	return fmt.Sprintf("grammar: JSON schema at %s: %s", path, e.Msg)
}

// Unwrap makes errors.Is(err, ErrSchema) hold.
func (e *SchemaError) Unwrap() error { return ErrSchema }

// FromJSONSchema compiles the grammar of the JSON documents that validate
// against schema. Errors wrap ErrSchema (a *SchemaError names the keyword
// and where it is) or the errors of Parse.
func FromJSONSchema(schema []byte) (*Grammar, error) {
	src, err := JSONSchemaToGBNF(schema)
	if err != nil {
		return nil, err
	}
	return Parse(src)
}

// JSONSchemaToGBNF converts a JSON schema to GBNF.
func JSONSchemaToGBNF(schema []byte) (string, error) {
	return JSONSchemaToGBNFAround(schema, "", "")
}

// JSONSchemaToGBNFAround converts a JSON schema to GBNF whose sentences
// are the schema's documents between the texts prefix and suffix (a tool
// call's markers, say).
func JSONSchemaToGBNFAround(schema []byte, prefix, suffix string) (string, error) {
	doc, err := decodeOrdered(schema)
	if err != nil {
		return "", &SchemaError{Msg: "not valid JSON: " + err.Error()}
	}
	c := &converter{doc: doc, names: map[string]bool{}, refs: map[string]string{}}
	for _, p := range strings.Split(jsonPrimitives, "\n") {
		if name, _, ok := strings.Cut(p, " ::= "); ok {
			c.names[name] = true
		}
	}
	root, err := c.visit(doc, "", "root")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if prefix != "" {
		root = gbnfString(prefix) + " " + root
	}
	if suffix != "" {
		root += " " + gbnfString(suffix)
	}
	b.WriteString("root ::= " + root + "\n")
	for _, r := range c.rules {
		b.WriteString(r + "\n")
	}
	b.WriteString(jsonPrimitives)
	return b.String(), nil
}

type converter struct {
	doc   any
	rules []string
	names map[string]bool   // rule names taken
	refs  map[string]string // $ref -> rule name
}

func errAt(path, keyword, format string, args ...any) *SchemaError {
	return &SchemaError{Path: path, Keyword: keyword, Msg: fmt.Sprintf(format, args...)}
}

// rule adds `name ::= body` with a fresh name derived from hint.
func (c *converter) rule(hint, body string) string {
	name := c.fresh(hint)
	c.rules = append(c.rules, name+" ::= "+body)
	return name
}

func (c *converter) fresh(hint string) string {
	var b strings.Builder
	for _, r := range hint {
		if r < 128 && isNameByte(byte(r)) && r != '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	base := strings.Trim(b.String(), "-")
	if base == "" {
		base = "r"
	}
	name := base
	for i := 1; c.names[name] || name == "root"; i++ {
		name = base + "-" + strconv.Itoa(i)
	}
	c.names[name] = true
	return name
}

// literal is v as GBNF: its compact JSON in a string literal, then space.
func literal(v any) string {
	var buf bytes.Buffer
	compactJSON(&buf, v)
	return gbnfString(buf.String()) + " space"
}

// gbnfString quotes s as a GBNF literal.
func gbnfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7F:
			fmt.Fprintf(&b, `\x%02X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// visit returns a GBNF expression for the instances of schema s, found
// at path; hint names the rules it adds.
func (c *converter) visit(s any, path, hint string) (string, error) {
	switch t := s.(type) {
	case bool:
		if !t {
			return "", errAt(path, "", "the schema false matches nothing")
		}
		return "value", nil
	case *object:
		return c.visitObject(t, path, hint)
	}
	return "", errAt(path, "", "a schema must be an object or a boolean")
}

func (c *converter) visitObject(s *object, path, hint string) (string, error) {
	for _, k := range s.keys {
		if !known[k] && !annotations[k] {
			return "", errAt(path+"/"+k, k, "keyword %q is not supported", k)
		}
	}
	if ref, ok := s.get("$ref"); ok {
		for _, k := range s.keys {
			if known[k] && k != "$ref" {
				return "", errAt(path+"/"+k, k, "keyword %q beside $ref is not supported", k)
			}
		}
		return c.ref(ref, path+"/$ref")
	}
	if v, ok := s.get("const"); ok {
		return "( " + literal(v) + " )", nil
	}
	if v, ok := s.get("enum"); ok {
		vals, ok := v.([]any)
		if !ok || len(vals) == 0 {
			return "", errAt(path+"/enum", "enum", "enum must be a non-empty array")
		}
		alts := make([]string, len(vals))
		for i, x := range vals {
			alts[i] = literal(x)
		}
		return "( " + strings.Join(alts, " | ") + " )", nil
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		v, ok := s.get(k)
		if !ok {
			continue
		}
		subs, ok := v.([]any)
		if !ok || len(subs) == 0 {
			return "", errAt(path+"/"+k, k, "%s must be a non-empty array of schemas", k)
		}
		var alts []string
		for i, sub := range subs {
			e, err := c.visit(sub, fmt.Sprintf("%s/%s/%d", path, k, i), fmt.Sprintf("%s-%d", hint, i))
			if err != nil {
				return "", err
			}
			alts = append(alts, e)
		}
		return "( " + strings.Join(alts, " | ") + " )", nil
	}
	types, err := schemaTypes(s, path)
	if err != nil {
		return "", err
	}
	var alts []string
	for _, typ := range types {
		e, err := c.visitType(s, typ, path, hint)
		if err != nil {
			return "", err
		}
		alts = append(alts, e)
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return "( " + strings.Join(alts, " | ") + " )", nil
}

// schemaTypes is the type keyword as a list; without it, what the other
// keywords imply ("" for any value).
func schemaTypes(s *object, path string) ([]string, error) {
	v, ok := s.get("type")
	if !ok {
		switch {
		case has(s, "properties", "additionalProperties", "required"):
			return []string{"object"}, nil
		case has(s, "items", "prefixItems", "minItems", "maxItems"):
			return []string{"array"}, nil
		case has(s, "minLength", "maxLength", "format"):
			return []string{"string"}, nil
		case has(s, "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
			return []string{"integer"}, nil
		}
		return []string{""}, nil
	}
	var list []any
	switch t := v.(type) {
	case string:
		list = []any{t}
	case []any:
		list = t
	}
	if len(list) == 0 {
		return nil, errAt(path+"/type", "type", "type must be a type name or a non-empty array of them")
	}
	var out []string
	for _, x := range list {
		name, _ := x.(string)
		switch name {
		case "object", "array", "string", "number", "integer", "boolean", "null":
			out = append(out, name)
		default:
			return nil, errAt(path+"/type", "type", "unknown type %v", x)
		}
	}
	return out, nil
}

func has(s *object, keys ...string) bool {
	for _, k := range keys {
		if _, ok := s.get(k); ok {
			return true
		}
	}
	return false
}

// typeKeys are the keywords that belong to one type.
var typeKeys = map[string][]string{
	"object":  {"properties", "required", "additionalProperties"},
	"array":   {"items", "prefixItems", "minItems", "maxItems"},
	"string":  {"minLength", "maxLength", "format"},
	"integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
}

func (c *converter) visitType(s *object, typ, path, hint string) (string, error) {
	if len(types(s)) <= 1 { // a list of types shares the keywords
		for t, keys := range typeKeys {
			if t == typ {
				continue
			}
			for _, k := range keys {
				if _, ok := s.get(k); ok {
					msg := fmt.Sprintf("keyword %q does not apply to type %s", k, typ)
					if typ == "number" && t == "integer" {
						msg = fmt.Sprintf("keyword %q is supported for integers only", k)
					}
					return "", errAt(path+"/"+k, k, "%s", msg)
				}
			}
		}
	}
	switch typ {
	case "object":
		return c.object(s, path, hint)
	case "array":
		return c.array(s, path, hint)
	case "string":
		return c.str(s, path, hint)
	case "integer":
		return c.integer(s, path, hint)
	case "number", "boolean", "null":
		return typ, nil
	}
	return "value", nil
}

func types(s *object) []any {
	if v, ok := s.get("type"); ok {
		if l, ok := v.([]any); ok {
			return l
		}
	}
	return nil
}

// ref resolves a $ref to #/$defs/name or #/definitions/name into a rule,
// converted once (refs may be recursive).
func (c *converter) ref(v any, path string) (string, error) {
	ref, _ := v.(string)
	if name, ok := c.refs[ref]; ok {
		return name, nil
	}
	var defs, key string
	switch {
	case strings.HasPrefix(ref, "#/$defs/"):
		defs, key = "$defs", ref[len("#/$defs/"):]
	case strings.HasPrefix(ref, "#/definitions/"):
		defs, key = "definitions", ref[len("#/definitions/"):]
	default:
		return "", errAt(path, "$ref", "$ref %q is not supported (only #/$defs/NAME and #/definitions/NAME)", ref)
	}
	key = strings.ReplaceAll(strings.ReplaceAll(key, "~1", "/"), "~0", "~")
	root, _ := c.doc.(*object)
	var target any
	if root != nil {
		if d, ok := root.get(defs); ok {
			if d, ok := d.(*object); ok {
				target, ok = d.get(key)
				_ = ok
			}
		}
	}
	if target == nil {
		return "", errAt(path, "$ref", "$ref %q names no definition", ref)
	}
	name := c.fresh("def-" + key)
	c.refs[ref] = name
	body, err := c.visit(target, "/"+defs+"/"+key, name)
	if err != nil {
		return "", err
	}
	c.rules = append(c.rules, name+" ::= "+body)
	return name, nil
}
