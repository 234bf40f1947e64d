package grammar

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

// Errors of Parse and FromJSONSchema, wrapped; test with errors.Is.
var (
	// ErrSyntax marks GBNF that does not parse (a *SyntaxError says where).
	ErrSyntax = errors.New("grammar: syntax error")
	// ErrInvalid marks a grammar that parses but cannot be used: an
	// undefined or duplicate rule, no root, left recursion.
	ErrInvalid = errors.New("grammar: invalid grammar")
	// ErrEmpty marks a grammar that matches nothing.
	ErrEmpty = errors.New("grammar: the grammar matches nothing")
	// ErrTooLarge marks a grammar whose automata exceed the limits.
	ErrTooLarge = errors.New("grammar: the grammar is too large")
	// ErrSchema marks a JSON schema that is invalid or uses a keyword the
	// converter does not support (the error names it).
	ErrSchema = errors.New("grammar: unsupported or invalid JSON schema")
)

type elemKind uint8

const (
	elemEnd elemKind = iota // the end of an alternative
	elemDFA                 // an automaton
	elemRef                 // a rule
)

type elem struct {
	kind elemKind
	dfa  int32 // elemDFA: index in Grammar.dfas
	rule int32 // elemRef
}

// Grammar is a compiled grammar: a set of rules whose start is the rule
// named root. It is immutable and safe for concurrent use; a [Matcher]
// follows one generation through it.
type Grammar struct {
	src   string
	elems []elem    // the alternatives, each ended by elemEnd
	alts  [][]int32 // rule -> the positions its alternatives start at
	names []string  // rule names, for errors
	dfas  []*dfa
	root  int32

	mu       sync.Mutex
	contexts map[contextKey]*contextMask // by vocabulary and top frame (mask.go)
}

// Parse compiles GBNF source (llama.cpp's grammar format) whose start rule
// is root. Errors wrap ErrSyntax (a *SyntaxError with the line), ErrInvalid,
// ErrEmpty or ErrTooLarge.
func Parse(src string) (*Grammar, error) {
	rules, err := parseGBNF(src)
	if err != nil {
		return nil, err
	}
	g, err := compile(rules)
	if err != nil {
		return nil, err
	}
	g.src = src
	return g, nil
}

// String returns the GBNF source the grammar was compiled from.
func (g *Grammar) String() string { return g.src }

// compiler turns rules into a Grammar.
type compiler struct {
	g         *Grammar
	bodies    []*node // rule index -> body (generated rules appended)
	index     map[string]int32
	recursive []bool // the rule reaches itself (such rules are frames, not inlined)
	inlining  []bool // guards inlining against a cycle the analysis missed
}

func compile(rules []rule) (*Grammar, error) {
	c := &compiler{g: &Grammar{}, index: map[string]int32{}}
	for _, r := range rules {
		if _, dup := c.index[r.name]; dup {
			return nil, fmt.Errorf("%w: rule %q is defined twice", ErrInvalid, r.name)
		}
		c.index[r.name] = int32(len(c.bodies))
		c.bodies = append(c.bodies, r.body)
		c.g.names = append(c.g.names, r.name)
	}
	root, ok := c.index["root"]
	if !ok {
		return nil, fmt.Errorf("%w: there is no rule named root", ErrInvalid)
	}
	c.g.root = root
	for i, b := range c.bodies {
		if err := c.checkRefs(b, c.g.names[i]); err != nil {
			return nil, err
		}
	}
	c.findRecursive()
	c.inlining = make([]bool, len(c.bodies))
	// Rules are compiled in order; generated rules append to c.bodies.
	c.g.alts = make([][]int32, len(c.bodies))
	for r := 0; r < len(c.bodies); r++ {
		if err := c.compileRule(int32(r)); err != nil {
			return nil, err
		}
	}
	if err := c.g.prune(); err != nil {
		return nil, err
	}
	if err := c.g.checkLeftRecursion(); err != nil {
		return nil, err
	}
	c.g.contexts = map[contextKey]*contextMask{}
	return c.g, nil
}

func (c *compiler) checkRefs(n *node, rule string) error {
	if n.kind == nodeRef {
		if _, ok := c.index[n.name]; !ok {
			return fmt.Errorf("%w: rule %q refers to %q, which is not defined", ErrInvalid, rule, n.name)
		}
	}
	for _, k := range n.kids {
		if err := c.checkRefs(k, rule); err != nil {
			return err
		}
	}
	return nil
}

// findRecursive marks the rules that reach themselves through references.
func (c *compiler) findRecursive() {
	n := len(c.bodies)
	refs := make([][]int32, n)
	for r, b := range c.bodies {
		walkRefs(b, func(name string) { refs[r] = append(refs[r], c.index[name]) })
	}
	c.recursive = make([]bool, n)
	for r := range n {
		seen := make([]bool, n)
		stack := slices.Clone(refs[r])
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if int(x) == r {
				c.recursive[r] = true
				break
			}
			if !seen[x] {
				seen[x] = true
				stack = append(stack, refs[x]...)
			}
		}
	}
}

func walkRefs(n *node, f func(string)) {
	if n.kind == nodeRef {
		f(n.name)
	}
	for _, k := range n.kids {
		walkRefs(k, f)
	}
}

// regular reports whether n can go into an automaton: it refers to no
// recursive rule.
func (c *compiler) regular(n *node) bool {
	ok := true
	walkRefs(n, func(name string) {
		if c.recursive[c.index[name]] {
			ok = false
		}
	})
	return ok
}

// generate adds a rule for body and returns its index.
func (c *compiler) generate(body *node, like int32) int32 {
	r := int32(len(c.bodies))
	c.bodies = append(c.bodies, body)
	c.recursive = append(c.recursive, true) // compiled as frames, never inlined
	c.inlining = append(c.inlining, false)
	c.g.alts = append(c.g.alts, nil)
	c.g.names = append(c.g.names, c.g.names[like]+"#"+strconv.Itoa(int(r))) // # is not a name character: no clash
	return r
}

// compileRule lays out rule r's alternatives as elements: runs of regular
// items become one automaton, references frames of their own.
func (c *compiler) compileRule(r int32) error {
	body := c.bodies[r]
	alts := []*node{body}
	if body.kind == nodeAlt {
		alts = body.kids
	}
	for _, alt := range alts {
		items := []*node{alt}
		if alt.kind == nodeSeq {
			items = alt.kids
		}
		start := int32(len(c.g.elems))
		var run []*node
		flush := func() error {
			if len(run) == 0 {
				return nil
			}
			a := &nfa{}
			f := a.empty()
			for _, it := range run {
				f = a.concat(f, c.build(a, it))
			}
			d, err := a.determinize(f)
			if err != nil {
				return fmt.Errorf("rule %q: %w", c.g.names[r], err)
			}
			run = run[:0]
			if d == nil { // matches nothing: an empty automaton, pruned later
				d = &dfa{}
			}
			c.g.dfas = append(c.g.dfas, d)
			c.g.elems = append(c.g.elems, elem{kind: elemDFA, dfa: int32(len(c.g.dfas) - 1)})
			return nil
		}
		for _, it := range items {
			switch {
			case it.kind == nodeRef:
				if err := flush(); err != nil {
					return err
				}
				c.g.elems = append(c.g.elems, elem{kind: elemRef, rule: c.index[it.name]})
			case c.regular(it):
				run = append(run, it)
			default:
				if err := flush(); err != nil {
					return err
				}
				c.g.elems = append(c.g.elems, elem{kind: elemRef, rule: c.desugar(it, r)})
			}
		}
		if err := flush(); err != nil {
			return err
		}
		c.g.elems = append(c.g.elems, elem{kind: elemEnd})
		c.g.alts[r] = append(c.g.alts[r], start)
	}
	return nil
}

// desugar turns an item that refers to a recursive rule (a group, a
// repetition) into generated rules and returns the one that matches it.
func (c *compiler) desugar(n *node, like int32) int32 {
	ref := func(r int32) *node { return &node{kind: nodeRef, name: c.g.names[r], off: n.off} }
	register := func(r int32) { c.index[c.g.names[r]] = r }
	if n.kind != nodeRep {
		r := c.generate(n, like)
		register(r)
		return r
	}
	x := n.kids[0]
	seq := &node{kind: nodeSeq, off: n.off}
	for range n.min {
		seq.kids = append(seq.kids, x)
	}
	if n.max < 0 { // star: S ::= x S | ε
		s := c.generate(nil, like)
		register(s)
		c.bodies[s] = &node{kind: nodeAlt, kids: []*node{{kind: nodeSeq, kids: []*node{x, ref(s)}}, {kind: nodeSeq}}}
		seq.kids = append(seq.kids, ref(s))
	} else if n.max > n.min { // O_k ::= x O_{k-1} | ε
		var prev int32 = -1
		for range n.max - n.min {
			o := c.generate(nil, like)
			register(o)
			first := &node{kind: nodeSeq, kids: []*node{x}}
			if prev >= 0 {
				first.kids = append(first.kids, ref(prev))
			}
			c.bodies[o] = &node{kind: nodeAlt, kids: []*node{first, {kind: nodeSeq}}}
			prev = o
		}
		seq.kids = append(seq.kids, ref(prev))
	}
	r := c.generate(seq, like)
	register(r)
	return r
}

// build adds the automaton of a regular item to a.
func (c *compiler) build(a *nfa, n *node) frag {
	if a.err != nil {
		return frag{}
	}
	switch n.kind {
	case nodeLit:
		return a.bytes(n.lit)
	case nodeClass:
		return a.class(n.ranges)
	case nodeRef:
		r := c.index[n.name]
		if c.inlining[r] { // cannot happen for a non-recursive rule
			a.err = fmt.Errorf("%w: rule %q reaches itself", ErrInvalid, n.name)
			return frag{}
		}
		c.inlining[r] = true
		f := c.build(a, c.bodies[r])
		c.inlining[r] = false
		return f
	case nodeSeq:
		f := a.empty()
		for _, k := range n.kids {
			f = a.concat(f, c.build(a, k))
		}
		return f
	case nodeAlt:
		fs := make([]frag, len(n.kids))
		for i, k := range n.kids {
			fs[i] = c.build(a, k)
		}
		return a.alt(fs)
	case nodeRep:
		return a.repeat(func() frag { return c.build(a, n.kids[0]) }, n.min, n.max)
	}
	panic("grammar: unknown node kind")
}

// prune drops the alternatives that cannot match anything (an empty
// automaton, a rule that matches nothing), so that every state the matcher
// reaches can be completed. It fails with ErrEmpty if root is left with
// nothing.
func (g *Grammar) prune() error {
	productive := make([]bool, len(g.alts))
	altOK := func(pos int32) bool {
		for ; g.elems[pos].kind != elemEnd; pos++ {
			e := g.elems[pos]
			if e.kind == elemDFA && len(g.dfas[e.dfa].accept) == 0 {
				return false
			}
			if e.kind == elemRef && !productive[e.rule] {
				return false
			}
		}
		return true
	}
	for changed := true; changed; {
		changed = false
		for r, alts := range g.alts {
			if productive[r] {
				continue
			}
			for _, a := range alts {
				if altOK(a) {
					productive[r], changed = true, true
					break
				}
			}
		}
	}
	if !productive[g.root] {
		return ErrEmpty
	}
	for r, alts := range g.alts {
		kept := alts[:0]
		for _, a := range alts {
			if altOK(a) {
				kept = append(kept, a)
			}
		}
		g.alts[r] = kept
	}
	return nil
}

// nullable reports which rules match the empty string.
func (g *Grammar) nullable() []bool {
	null := make([]bool, len(g.alts))
	for changed := true; changed; {
		changed = false
		for r, alts := range g.alts {
			if null[r] {
				continue
			}
			for _, a := range alts {
				if g.nullableFrom(a, null) {
					null[r], changed = true, true
					break
				}
			}
		}
	}
	return null
}

func (g *Grammar) nullableFrom(pos int32, null []bool) bool {
	for ; g.elems[pos].kind != elemEnd; pos++ {
		e := g.elems[pos]
		if e.kind == elemDFA && !g.dfas[e.dfa].accept[0] {
			return false
		}
		if e.kind == elemRef && !null[e.rule] {
			return false
		}
	}
	return true
}

// checkLeftRecursion rejects a rule that can reach itself without reading
// a byte: the matcher would expand it forever.
func (g *Grammar) checkLeftRecursion() error {
	null := g.nullable()
	first := make([][]int32, len(g.alts))
	for r, alts := range g.alts {
		for _, pos := range alts {
			for ; g.elems[pos].kind != elemEnd; pos++ {
				e := g.elems[pos]
				if e.kind == elemRef {
					first[r] = append(first[r], e.rule)
					if !null[e.rule] {
						break
					}
				} else if !g.dfas[e.dfa].accept[0] {
					break
				}
			}
		}
	}
	for r := range g.alts {
		seen := make([]bool, len(g.alts))
		stack := slices.Clone(first[r])
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if int(x) == r {
				return fmt.Errorf("%w: rule %q is left-recursive (it can reach itself before reading a character)", ErrInvalid, g.names[r])
			}
			if !seen[x] {
				seen[x] = true
				stack = append(stack, first[x]...)
			}
		}
	}
	return nil
}
