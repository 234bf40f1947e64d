package grammar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
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

func nonNegInt(s *object, key, path string) (int, bool, error) {
	v, ok := s.get(key)
	if !ok {
		return 0, false, nil
	}
	n, isNum := v.(json.Number)
	i, err := strconv.ParseInt(string(n), 10, 64)
	if !isNum || err != nil || i < 0 || i > maxRepeat {
		return 0, false, errAt(path+"/"+key, key, "%s must be an integer in [0, %d]", key, maxRepeat)
	}
	return int(i), true, nil
}

func repeat(item string, lo int, hi int, hasHi bool) string {
	switch {
	case !hasHi:
		return fmt.Sprintf("%s{%d,}", item, lo)
	case lo == hi:
		return fmt.Sprintf("%s{%d}", item, lo)
	}
	return fmt.Sprintf("%s{%d,%d}", item, lo, hi)
}

func (c *converter) str(s *object, path, hint string) (string, error) {
	if f, ok := s.get("format"); ok {
		if has(s, "minLength", "maxLength") {
			return "", errAt(path+"/format", "format", "format with minLength or maxLength is not supported")
		}
		name, _ := f.(string)
		body, ok := formats[name]
		if !ok {
			return "", errAt(path+"/format", "format", "format %q is not supported (date, time, date-time, uuid)", f)
		}
		return c.rule(hint+"-"+name, `"\"" `+body+` "\"" space`), nil
	}
	lo, _, err := nonNegInt(s, "minLength", path)
	if err != nil {
		return "", err
	}
	hi, hasHi, err := nonNegInt(s, "maxLength", path)
	if err != nil {
		return "", err
	}
	if hasHi && hi < lo {
		return "", errAt(path+"/maxLength", "maxLength", "maxLength %d is below minLength %d", hi, lo)
	}
	if lo == 0 && !hasHi {
		return "string", nil
	}
	return c.rule(hint+"-string", `"\"" `+repeat("char", lo, hi, hasHi)+` "\"" space`), nil
}

func (c *converter) array(s *object, path, hint string) (string, error) {
	lo, _, err := nonNegInt(s, "minItems", path)
	if err != nil {
		return "", err
	}
	hi, hasHi, err := nonNegInt(s, "maxItems", path)
	if err != nil {
		return "", err
	}
	if hasHi && hi < lo {
		return "", errAt(path+"/maxItems", "maxItems", "maxItems %d is below minItems %d", hi, lo)
	}
	if v, ok := s.get("prefixItems"); ok {
		subs, ok := v.([]any)
		if !ok {
			return "", errAt(path+"/prefixItems", "prefixItems", "prefixItems must be an array of schemas")
		}
		if has(s, "items", "minItems", "maxItems") {
			return "", errAt(path+"/prefixItems", "prefixItems", "prefixItems with items, minItems or maxItems is not supported")
		}
		var parts []string
		for i, sub := range subs {
			e, err := c.visit(sub, fmt.Sprintf("%s/prefixItems/%d", path, i), fmt.Sprintf("%s-%d", hint, i))
			if err != nil {
				return "", err
			}
			if i > 0 {
				e = `"," space ` + e
			}
			parts = append(parts, e)
		}
		return c.rule(hint+"-tuple", `"[" space `+strings.Join(parts, " ")+` "]" space`), nil
	}
	item := "value"
	if v, ok := s.get("items"); ok {
		if item, err = c.visit(v, path+"/items", hint+"-item"); err != nil {
			return "", err
		}
		item = c.rule(hint+"-item", item)
	}
	if hasHi && hi == 0 {
		return c.rule(hint, `"[" space "]" space`), nil
	}
	// item ("," item){lo-1, hi-1}, optional as a whole when lo is 0.
	rest := repeat(`( "," space `+item+` )`, max(lo-1, 0), hi-1, hasHi)
	body := item + " " + rest
	if lo == 0 {
		body = "( " + body + " )?"
	}
	return c.rule(hint, `"[" space `+body+` "]" space`), nil
}

func (c *converter) object(s *object, path, hint string) (string, error) {
	type prop struct {
		name     string
		value    string
		required bool
	}
	var props []prop
	index := map[string]int{}
	if v, ok := s.get("properties"); ok {
		ps, ok := v.(*object)
		if !ok {
			return "", errAt(path+"/properties", "properties", "properties must be an object of schemas")
		}
		for _, k := range ps.keys {
			e, err := c.visit(ps.vals[k], path+"/properties/"+k, hint+"-"+k)
			if err != nil {
				return "", err
			}
			index[k] = len(props)
			props = append(props, prop{name: k, value: e})
		}
	}
	if v, ok := s.get("required"); ok {
		req, ok := v.([]any)
		if !ok {
			return "", errAt(path+"/required", "required", "required must be an array of property names")
		}
		for _, r := range req {
			name, ok := r.(string)
			if !ok {
				return "", errAt(path+"/required", "required", "required must be an array of property names")
			}
			i, ok := index[name]
			if !ok { // required but not described: any value
				i = len(props)
				index[name] = i
				props = append(props, prop{name: name, value: "value"})
			}
			props[i].required = true
		}
	}
	ap, hasAP := s.get("additionalProperties")
	if len(props) == 0 && (!hasAP || ap == true) {
		return "object", nil // any object
	}
	extra := ""
	if hasAP && ap != false {
		v := ap
		value, err := c.visit(v, path+"/additionalProperties", hint+"-additional")
		if err != nil {
			return "", err
		}
		var names []string
		for _, p := range props {
			names = append(names, p.name)
		}
		key := c.rule(hint+"-additional-key", notStrings(names))
		extra = c.rule(hint+"-additional-kv", key+` ":" space `+value)
	}
	// first(i): the members from i on, none written yet; rest(i): the same
	// after one was written, each behind a comma.
	n := len(props)
	kv := make([]string, n)
	for i, p := range props {
		kv[i] = c.rule(hint+"-"+p.name+"-kv", gbnfString(`"`+jsonEscape(p.name)+`"`)+` space ":" space `+p.value)
	}
	rest := make([]string, n+1)
	rest[n] = `""`
	if extra != "" {
		rest[n] = `( "," space ` + extra + ` )*`
	}
	for i := n - 1; i >= 0; i-- {
		item := `"," space ` + kv[i]
		if !props[i].required {
			item = "( " + item + " )?"
		}
		rest[i] = c.rule(fmt.Sprintf("%s-rest-%d", hint, i), item+" "+rest[i+1])
	}
	first := `""`
	if extra != "" {
		first = "( " + extra + " " + rest[n] + " )?"
	}
	for i := n - 1; i >= 0; i-- {
		body := kv[i] + " " + rest[i+1]
		if !props[i].required {
			body += " | " + first
		}
		first = c.rule(fmt.Sprintf("%s-first-%d", hint, i), body)
	}
	return c.rule(hint+"-object", `"{" space `+first+` "}" space`), nil
}

// jsonEscape is s as the inside of a JSON string.
func jsonEscape(s string) string {
	var buf bytes.Buffer
	writeJSONString(&buf, s)
	return buf.String()[1 : buf.Len()-1]
}

// notStrings is a JSON string (then space) that is none of names: a walk
// down the trie of the names that leaves it at a character no name has
// there, or goes past the end of a name, or stops short of every name.
func notStrings(names []string) string {
	type trie struct {
		kids map[rune]*trie
		end  bool
	}
	root := &trie{kids: map[rune]*trie{}}
	for _, n := range names {
		t := root
		for _, r := range n {
			if t.kids[r] == nil {
				t.kids[r] = &trie{kids: map[rune]*trie{}}
			}
			t = t.kids[r]
		}
		t.end = true
	}
	var expr func(t *trie) string
	expr = func(t *trie) string {
		var keys []rune
		for r := range t.kids {
			keys = append(keys, r)
		}
		slices.Sort(keys)
		var alts []string
		// A character no name continues with: anything may follow.
		var class strings.Builder
		class.WriteString(`[^"\\\x7F\x00-\x1F`)
		for _, r := range keys {
			class.WriteString(classEscape(r))
		}
		class.WriteString("]")
		alts = append(alts, class.String()+" char*")
		alts = append(alts, `[\\] ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) char*`)
		for _, r := range keys {
			alts = append(alts, gbnfString(string(r))+" "+expr(t.kids[r]))
		}
		e := "( " + strings.Join(alts, " | ") + " )"
		if !t.end {
			e += "?" // stopping here is no name
		}
		return e
	}
	return `"\"" ` + expr(root) + ` "\"" space`
}

func classEscape(r rune) string {
	switch r {
	case ']', '[', '\\', '^', '-':
		return `\` + string(r)
	}
	if r < 0x20 || r == 0x7F {
		return fmt.Sprintf(`\x%02X`, r)
	}
	return string(r)
}

func (c *converter) integer(s *object, path, hint string) (string, error) {
	var lo, hi *big.Int
	for _, key := range typeKeys["integer"] {
		v, ok := s.get(key)
		if !ok {
			continue
		}
		n, isNum := v.(json.Number)
		r, ok := new(big.Rat).SetString(string(n))
		if !isNum || !ok || r.Cmp(big.NewRat(1e18, 1)) > 0 || r.Cmp(big.NewRat(-1e18, 1)) < 0 {
			return "", errAt(path+"/"+key, key, "%s must be a number within ±1e18", key)
		}
		floor := new(big.Int).Div(r.Num(), r.Denom()) // Euclidean: floor for a positive denominator
		ceil := new(big.Int).Neg(new(big.Int).Div(new(big.Int).Neg(r.Num()), r.Denom()))
		one := big.NewInt(1)
		switch key { // the integers >= minimum are those >= ceil(minimum), ...
		case "minimum":
			lo = maxInt(lo, ceil)
		case "exclusiveMinimum":
			lo = maxInt(lo, floor.Add(floor, one))
		case "maximum":
			hi = minInt(hi, floor)
		case "exclusiveMaximum":
			hi = minInt(hi, ceil.Sub(ceil, one))
		}
	}
	if lo == nil && hi == nil {
		return "integer", nil
	}
	if lo != nil && hi != nil && lo.Cmp(hi) > 0 {
		return "", errAt(path, "minimum", "no integer lies between the minimum and the maximum")
	}
	var l, h *int64
	if lo != nil {
		v := lo.Int64()
		l = &v
	}
	if hi != nil {
		v := hi.Int64()
		h = &v
	}
	return c.rule(hint+"-integer", "( "+intRange(l, h)+" ) space"), nil
}

func maxInt(a, b *big.Int) *big.Int {
	if a == nil || b.Cmp(a) > 0 {
		return b
	}
	return a
}

func minInt(a, b *big.Int) *big.Int {
	if a == nil || b.Cmp(a) < 0 {
		return b
	}
	return a
}
