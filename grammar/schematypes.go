package grammar

// The converter's keywords of each type: strings, arrays, objects and
// integer ranges.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

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
