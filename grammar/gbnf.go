package grammar

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The GBNF parser: llama.cpp's grammar syntax, read into rules of
// expressions (the ast below), which compile.go turns into automata.
//
//	root  ::= "{" ws pair ("," ws pair)* "}"   # a comment
//	pair  ::= [a-z]+ ":" ws ( "true" | "false" )
//	ws    ::= [ \t\n]*
//
// A rule ends at a newline, except inside parentheses and after ::= or |.

type nodeKind uint8

const (
	nodeLit   nodeKind = iota // a string (UTF-8 bytes)
	nodeClass                 // a character class
	nodeRef                   // another rule
	nodeSeq                   // a sequence
	nodeAlt                   // alternatives
	nodeRep                   // a repetition {min,max}
)

// node is an expression of a rule's body.
type node struct {
	kind     nodeKind
	lit      string
	ranges   []runeRange // nodeClass: sorted, merged, the negation applied
	name     string      // nodeRef
	kids     []*node     // nodeSeq, nodeAlt, nodeRep (one)
	min, max int         // nodeRep; max -1 is unbounded
	off      int         // where it starts in the source, for errors
}

type runeRange struct{ lo, hi rune }

// rule is one `name ::= body` of the source.
type rule struct {
	name string
	body *node
	off  int
}

// SyntaxError is a GBNF source that does not parse: where and why.
type SyntaxError struct {
	Line, Col int
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("grammar: line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

// Unwrap makes errors.Is(err, ErrSyntax) hold.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

type parser struct {
	src   string
	pos   int
	depth int // parentheses open
}

// maxNesting bounds nested parentheses (the parser recurses on them).
const maxNesting = 200

// maxRepeat bounds the counts of x{m,n}: each repetition is unrolled.
const maxRepeat = 10000

func (p *parser) errorf(off int, format string, args ...any) error {
	line := 1 + strings.Count(p.src[:off], "\n")
	col := off - strings.LastIndex(p.src[:off], "\n")
	return &SyntaxError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// parseGBNF reads the rules of src in order.
func parseGBNF(src string) ([]rule, error) {
	if !utf8.ValidString(src) {
		return nil, &SyntaxError{Line: 1, Col: 1, Msg: "the grammar is not valid UTF-8"}
	}
	p := &parser{src: src}
	var rules []rule
	for {
		p.space(true)
		if p.pos == len(src) {
			break
		}
		off := p.pos
		name := p.name()
		if name == "" {
			return nil, p.errorf(p.pos, "expected a rule name, found %q", p.peekText())
		}
		p.space(false)
		if !strings.HasPrefix(src[p.pos:], "::=") {
			return nil, p.errorf(p.pos, "expected ::= after the rule name %q", name)
		}
		p.pos += 3
		p.space(true)
		body, err := p.alternates(false)
		if err != nil {
			return nil, err
		}
		rules = append(rules, rule{name: name, body: body, off: off})
		p.space(false)
		if p.pos < len(src) && src[p.pos] != '\n' && src[p.pos] != '\r' {
			return nil, p.errorf(p.pos, "expected the end of the line after rule %q, found %q", name, p.peekText())
		}
	}
	if len(rules) == 0 {
		return nil, &SyntaxError{Line: 1, Col: 1, Msg: "the grammar has no rules"}
	}
	return rules, nil
}

func (p *parser) peekText() string {
	end := min(len(p.src), p.pos+10)
	return p.src[p.pos:end]
}

// space skips blanks and comments; newlines too when nested.
func (p *parser) space(nested bool) {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == ' ' || c == '\t':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		case (c == '\n' || c == '\r') && nested:
			p.pos++
		default:
			return
		}
	}
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func (p *parser) name() string {
	start := p.pos
	for p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *parser) alternates(nested bool) (*node, error) {
	off := p.pos
	var alts []*node
	for {
		seq, err := p.sequence(nested)
		if err != nil {
			return nil, err
		}
		alts = append(alts, seq)
		if p.pos < len(p.src) && p.src[p.pos] == '|' {
			p.pos++
			p.space(true)
			continue
		}
		break
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return &node{kind: nodeAlt, kids: alts, off: off}, nil
}

func (p *parser) sequence(nested bool) (*node, error) {
	seq := &node{kind: nodeSeq, off: p.pos}
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		var item *node
		var err error
		switch {
		case c == '"':
			item, err = p.literal()
		case c == '[':
			item, err = p.class()
		case c == '.':
			item = &node{kind: nodeClass, ranges: []runeRange{{0, utf8.MaxRune}}, off: p.pos}
			p.pos++
		case c == '(':
			off := p.pos
			if p.depth++; p.depth > maxNesting {
				return nil, p.errorf(off, "parentheses nested more than %d deep", maxNesting)
			}
			p.pos++
			p.space(true)
			item, err = p.alternates(true)
			if err == nil {
				if p.pos >= len(p.src) || p.src[p.pos] != ')' {
					return nil, p.errorf(off, "unclosed parenthesis")
				}
				p.pos++
				p.depth--
			}
		case isNameByte(c):
			item = &node{kind: nodeRef, name: p.name(), off: p.pos}
			item.off = p.pos - len(item.name)
		case c == '<':
			return nil, p.errorf(p.pos, "token references (<...>) are not supported")
		default:
			return seq, nil
		}
		if err != nil {
			return nil, err
		}
		p.space(nested)
		if strings.HasPrefix(p.src[p.pos:], "::=") {
			return nil, p.errorf(item.off, "unexpected ::= (a rule inside parentheses, or two rules on one line?)")
		}
		item, err = p.repetition(item, nested)
		if err != nil {
			return nil, err
		}
		seq.kids = append(seq.kids, item)
	}
	return seq, nil
}

// repetition reads the operators after an item: *, +, ?, {m}, {m,}, {m,n}.
func (p *parser) repetition(item *node, nested bool) (*node, error) {
	for p.pos < len(p.src) {
		off := p.pos
		lo, hi := 0, 0
		switch p.src[p.pos] {
		case '*':
			lo, hi = 0, -1
			p.pos++
		case '+':
			lo, hi = 1, -1
			p.pos++
		case '?':
			lo, hi = 0, 1
			p.pos++
		case '{':
			p.pos++
			p.space(nested)
			var err error
			if lo, err = p.count(); err != nil {
				return nil, err
			}
			hi = lo
			p.space(nested)
			if p.pos < len(p.src) && p.src[p.pos] == ',' {
				p.pos++
				p.space(nested)
				hi = -1
				if p.pos < len(p.src) && p.src[p.pos] != '}' {
					if hi, err = p.count(); err != nil {
						return nil, err
					}
				}
				p.space(nested)
			}
			if p.pos >= len(p.src) || p.src[p.pos] != '}' {
				return nil, p.errorf(off, "expected } to close the repetition")
			}
			p.pos++
			if hi >= 0 && hi < lo {
				return nil, p.errorf(off, "repetition {%d,%d}: the maximum is below the minimum", lo, hi)
			}
		default:
			return item, nil
		}
		item = &node{kind: nodeRep, kids: []*node{item}, min: lo, max: hi, off: off}
		p.space(nested)
	}
	return item, nil
}

func (p *parser) count() (int, error) {
	start := p.pos
	for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.pos++
	}
	if start == p.pos {
		return 0, p.errorf(start, "expected a number in the repetition")
	}
	n, err := strconv.Atoi(p.src[start:p.pos])
	if err != nil || n > maxRepeat {
		return 0, p.errorf(start, "repetition count %s is above %d", p.src[start:p.pos], maxRepeat)
	}
	return n, nil
}

func (p *parser) literal() (*node, error) {
	off := p.pos
	p.pos++ // "
	var b strings.Builder
	for {
		if p.pos >= len(p.src) || p.src[p.pos] == '\n' {
			return nil, p.errorf(off, "unterminated string")
		}
		if p.src[p.pos] == '"' {
			p.pos++
			return &node{kind: nodeLit, lit: b.String(), off: off}, nil
		}
		r, err := p.char()
		if err != nil {
			return nil, err
		}
		b.WriteRune(r)
	}
}

// char reads one character of a literal or class, escapes decoded.
func (p *parser) char() (rune, error) {
	off := p.pos
	if p.src[p.pos] != '\\' {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		p.pos += n
		return r, nil
	}
	p.pos++
	if p.pos >= len(p.src) {
		return 0, p.errorf(off, "unfinished escape")
	}
	c := p.src[p.pos]
	p.pos++
	switch c {
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case '\\', '"', '[', ']', '-', '^', '/', '.', '(', ')', '*', '+', '?', '|', '{', '}':
		return rune(c), nil
	case 'x', 'u', 'U':
		n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
		if p.pos+n > len(p.src) {
			return 0, p.errorf(off, "\\%c needs %d hex digits", c, n)
		}
		v, err := strconv.ParseUint(p.src[p.pos:p.pos+n], 16, 32)
		if err != nil {
			return 0, p.errorf(off, "\\%c needs %d hex digits", c, n)
		}
		p.pos += n
		if v > utf8.MaxRune || (v >= 0xD800 && v <= 0xDFFF) {
			return 0, p.errorf(off, "\\%c%0*X is not a Unicode scalar value", c, n, v)
		}
		return rune(v), nil
	}
	return 0, p.errorf(off, "unknown escape \\%c", c)
}

func (p *parser) class() (*node, error) {
	off := p.pos
	p.pos++ // [
	negated := false
	if p.pos < len(p.src) && p.src[p.pos] == '^' {
		negated = true
		p.pos++
	}
	var ranges []runeRange
	for {
		if p.pos >= len(p.src) || p.src[p.pos] == '\n' {
			return nil, p.errorf(off, "unterminated character class")
		}
		if p.src[p.pos] == ']' {
			p.pos++
			break
		}
		lo, err := p.char()
		if err != nil {
			return nil, err
		}
		hi := lo
		if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			p.pos++
			if hi, err = p.char(); err != nil {
				return nil, err
			}
			if hi < lo {
				return nil, p.errorf(off, "character range %q-%q is reversed", lo, hi)
			}
		}
		ranges = append(ranges, runeRange{lo, hi})
	}
	ranges = normalizeRanges(ranges)
	if negated {
		ranges = negateRanges(ranges)
	}
	return &node{kind: nodeClass, ranges: ranges, off: off}, nil
}
