package grammar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// validate checks a JSON document against a schema, written from JSON
// Schema's definitions of the keywords the converter supports: the
// reference the converter's output is held to.
func validate(schema []byte, doc []byte) error {
	s, err := decodeOrdered(schema)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return (&validator{root: s}).check(s, v, "")
}

type validator struct{ root any }

var (
	uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	timeRE = regexp.MustCompile(`^\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)
)

func (vd *validator) check(schema, v any, at string) error {
	if b, ok := schema.(bool); ok {
		if !b {
			return fmt.Errorf("%s: false schema", at)
		}
		return nil
	}
	s := schema.(*object)
	if ref, ok := s.get("$ref"); ok {
		parts := strings.SplitN(strings.TrimPrefix(ref.(string), "#/"), "/", 2)
		defs, _ := vd.root.(*object).get(parts[0])
		target, _ := defs.(*object).get(parts[1])
		return vd.check(target, v, at)
	}
	if c, ok := s.get("const"); ok && !jsonEqual(c, v) {
		return fmt.Errorf("%s: not the const", at)
	}
	if e, ok := s.get("enum"); ok {
		found := false
		for _, x := range e.([]any) {
			found = found || jsonEqual(x, v)
		}
		if !found {
			return fmt.Errorf("%s: not in the enum", at)
		}
	}
	if a, ok := s.get("anyOf"); ok {
		n := 0
		for _, sub := range a.([]any) {
			if vd.check(sub, v, at) == nil {
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("%s: no anyOf branch", at)
		}
	}
	if a, ok := s.get("oneOf"); ok {
		n := 0
		for _, sub := range a.([]any) {
			if vd.check(sub, v, at) == nil {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: %d oneOf branches match", at, n)
		}
	}
	if t, ok := s.get("type"); ok {
		var list []any
		if str, ok := t.(string); ok {
			list = []any{str}
		} else {
			list = t.([]any)
		}
		found := false
		for _, x := range list {
			found = found || typeOf(v, x.(string))
		}
		if !found {
			return fmt.Errorf("%s: wrong type", at)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props := &object{vals: map[string]any{}}
		if p, ok := s.get("properties"); ok {
			props = p.(*object)
		}
		if r, ok := s.get("required"); ok {
			for _, name := range r.([]any) {
				if _, ok := x[name.(string)]; !ok {
					return fmt.Errorf("%s: missing %s", at, name)
				}
			}
		}
		for k, val := range x {
			if ps, ok := props.get(k); ok {
				if err := vd.check(ps, val, at+"/"+k); err != nil {
					return err
				}
				continue
			}
			if ap, ok := s.get("additionalProperties"); ok {
				if err := vd.check(ap, val, at+"/"+k); err != nil {
					return err
				}
			}
		}
	case []any:
		if n, ok := num(s, "minItems"); ok && len(x) < int(n.Int64()) {
			return fmt.Errorf("%s: too few items", at)
		}
		if n, ok := num(s, "maxItems"); ok && len(x) > int(n.Int64()) {
			return fmt.Errorf("%s: too many items", at)
		}
		start := 0
		if p, ok := s.get("prefixItems"); ok {
			for i, sub := range p.([]any) {
				if i < len(x) {
					if err := vd.check(sub, x[i], fmt.Sprintf("%s/%d", at, i)); err != nil {
						return err
					}
				}
			}
			start = len(p.([]any))
		}
		if it, ok := s.get("items"); ok {
			for i := start; i < len(x); i++ {
				if err := vd.check(it, x[i], fmt.Sprintf("%s/%d", at, i)); err != nil {
					return err
				}
			}
		}
	case string:
		n := utf8.RuneCountInString(x)
		if m, ok := num(s, "minLength"); ok && n < int(m.Int64()) {
			return fmt.Errorf("%s: too short", at)
		}
		if m, ok := num(s, "maxLength"); ok && n > int(m.Int64()) {
			return fmt.Errorf("%s: too long", at)
		}
		if f, ok := s.get("format"); ok {
			var err error
			switch f {
			case "date":
				_, err = time.Parse("2006-01-02", x)
			case "date-time":
				_, err = time.Parse(time.RFC3339Nano, x)
			case "time":
				if !timeRE.MatchString(x) {
					err = fmt.Errorf("bad time")
				} else {
					_, err = time.Parse(time.RFC3339Nano, "2000-01-01T"+x)
				}
			case "uuid":
				if !uuidRE.MatchString(x) {
					err = fmt.Errorf("bad uuid")
				}
			}
			if err != nil {
				return fmt.Errorf("%s: format %s: %v", at, f, err)
			}
		}
	case json.Number:
		r, _ := new(big.Rat).SetString(string(x))
		for key, cmp := range map[string]func(int) bool{
			"minimum": func(c int) bool { return c >= 0 }, "exclusiveMinimum": func(c int) bool { return c > 0 },
			"maximum": func(c int) bool { return c <= 0 }, "exclusiveMaximum": func(c int) bool { return c < 0 },
		} {
			if b, ok := s.get(key); ok {
				br, _ := new(big.Rat).SetString(string(b.(json.Number)))
				if !cmp(r.Cmp(br)) {
					return fmt.Errorf("%s: %s fails %s %s", at, x, key, b)
				}
			}
		}
	}
	return nil
}

func num(s *object, key string) (*big.Int, bool) {
	v, ok := s.get(key)
	if !ok {
		return nil, false
	}
	n, _ := new(big.Int).SetString(string(v.(json.Number)), 10)
	return n, true
}

func typeOf(v any, t string) bool {
	switch x := v.(type) {
	case map[string]any:
		return t == "object"
	case []any:
		return t == "array"
	case string:
		return t == "string"
	case bool:
		return t == "boolean"
	case nil:
		return t == "null"
	case json.Number:
		if t == "number" {
			return true
		}
		r, ok := new(big.Rat).SetString(string(x))
		return t == "integer" && ok && r.IsInt()
	}
	return false
}

// jsonEqual compares a schema value (ordered) with an instance value.
func jsonEqual(a, b any) bool {
	var ab, bb bytes.Buffer
	compactJSON(&ab, a)
	json.NewEncoder(&bb).Encode(b)
	var x, y any
	json.Unmarshal(ab.Bytes(), &x)
	json.Unmarshal(bb.Bytes(), &y)
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return string(xs) == string(ys)
}
