package grammar

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// The regular parts of a grammar (strings, classes, repetitions, and the
// rules that do not reach themselves) become byte automata: a Thompson NFA
// made deterministic. A whole JSON string, number or key is one automaton,
// so the matcher's stacks stay shallow and most tokens are decided inside
// one automaton.

// Limits on the automata of one grammar, so a hostile grammar fails to
// compile instead of exhausting memory.
const (
	maxNFAStates = 1 << 20
	maxDFAStates = 1 << 16
)

type nfaState struct {
	eps    []int32
	lo, hi byte
	to     int32 // -1: no byte transition
}

type nfa struct {
	states []nfaState
	err    error
}

type frag struct{ start, end int32 }

func (a *nfa) add() int32 {
	if len(a.states) >= maxNFAStates {
		if a.err == nil {
			a.err = fmt.Errorf("%w: more than %d automaton states", ErrTooLarge, maxNFAStates)
		}
		return 0
	}
	a.states = append(a.states, nfaState{to: -1})
	return int32(len(a.states) - 1)
}

func (a *nfa) eps(from, to int32) {
	if a.err == nil {
		a.states[from].eps = append(a.states[from].eps, to)
	}
}

func (a *nfa) edge(from, to int32, lo, hi byte) {
	if a.err != nil {
		return
	}
	if a.states[from].to >= 0 { // one byte edge per state: chain through a new one
		mid := a.add()
		a.eps(from, mid)
		from = mid
		if a.err != nil {
			return
		}
	}
	a.states[from].lo, a.states[from].hi, a.states[from].to = lo, hi, to
}

func (a *nfa) empty() frag {
	s := a.add()
	return frag{s, s}
}

func (a *nfa) bytes(b string) frag {
	start := a.add()
	cur := start
	for i := 0; i < len(b); i++ {
		next := a.add()
		a.edge(cur, next, b[i], b[i])
		cur = next
	}
	return frag{start, cur}
}

func (a *nfa) class(rs []runeRange) frag {
	start, end := a.add(), a.add()
	var seqs [][]byteRange
	for _, r := range rs {
		seqs = utf8Sequences(r.lo, r.hi, seqs[:0])
		for _, seq := range seqs {
			cur := start
			for i, br := range seq {
				next := end
				if i < len(seq)-1 {
					next = a.add()
				}
				a.edge(cur, next, br.lo, br.hi)
				cur = next
			}
		}
	}
	return frag{start, end}
}

func (a *nfa) concat(x, y frag) frag {
	a.eps(x.end, y.start)
	return frag{x.start, y.end}
}

func (a *nfa) alt(fs []frag) frag {
	start, end := a.add(), a.add()
	for _, f := range fs {
		a.eps(start, f.start)
		a.eps(f.end, end)
	}
	return frag{start, end}
}

// repeat builds x{min,max} (max -1: unbounded) from a function that builds
// a fresh copy of x.
func (a *nfa) repeat(x func() frag, lo, hi int) frag {
	f := a.empty()
	for range lo {
		f = a.concat(f, x())
		if a.err != nil {
			return f
		}
	}
	if hi < 0 {
		y := x()
		loop := a.add()
		a.eps(loop, y.start)
		a.eps(y.end, loop)
		return a.concat(f, frag{loop, loop})
	}
	// x? nested: (x (x ...)?)?, so that each optional copy follows the
	// previous one.
	end := a.add()
	cur := f.end
	for range hi - lo {
		y := x()
		if a.err != nil {
			return f
		}
		a.eps(cur, y.start)
		a.eps(cur, end)
		cur = y.end
	}
	a.eps(cur, end)
	return frag{f.start, end}
}

// dfa is a deterministic byte automaton. Bytes map to classes (bytes no
// transition tells apart); next[q*nclass+class] is the next state or -1.
// Every state can reach an accepting one.
type dfa struct {
	class  [256]uint8
	nclass int
	next   []int32
	accept []bool
	live   []bool // the state has a transition
}

func (d *dfa) step(q int32, b byte) int32 {
	return d.next[int(q)*d.nclass+int(d.class[b])]
}

// determinize makes f's NFA deterministic (state 0 is the start) and
// drops the states from which no accepting state is reachable; nil if the
// language is empty.
func (a *nfa) determinize(f frag) (*dfa, error) {
	if a.err != nil {
		return nil, a.err
	}
	d := &dfa{}
	// Byte classes: split 0-255 at every edge's bounds.
	var cut [257]bool
	cut[0], cut[256] = true, true
	for _, s := range a.states {
		if s.to >= 0 {
			cut[s.lo], cut[int(s.hi)+1] = true, true
		}
	}
	var reps []byte
	c := -1
	for b := range 256 {
		if cut[b] {
			c++
			reps = append(reps, byte(b))
		}
		d.class[b] = uint8(c)
	}
	d.nclass = c + 1

	closure := func(set []int32) []int32 {
		seen := map[int32]bool{}
		stack := slices.Clone(set)
		var out []int32
		for len(stack) > 0 {
			s := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[s] {
				continue
			}
			seen[s] = true
			out = append(out, s)
			stack = append(stack, a.states[s].eps...)
		}
		slices.Sort(out)
		return out
	}
	key := func(set []int32) string {
		b := make([]byte, 4*len(set))
		for i, s := range set {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(s))
		}
		return string(b)
	}
	ids := map[string]int32{}
	var sets [][]int32
	intern := func(set []int32) (int32, error) {
		k := key(set)
		if id, ok := ids[k]; ok {
			return id, nil
		}
		if len(sets) >= maxDFAStates {
			return 0, fmt.Errorf("%w: more than %d automaton states", ErrTooLarge, maxDFAStates)
		}
		ids[k] = int32(len(sets))
		sets = append(sets, set)
		return int32(len(sets) - 1), nil
	}
	if _, err := intern(closure([]int32{f.start})); err != nil {
		return nil, err
	}
	var next []int32
	for q := 0; q < len(sets); q++ {
		for _, rb := range reps {
			var to []int32
			for _, s := range sets[q] {
				st := a.states[s]
				if st.to >= 0 && st.lo <= rb && rb <= st.hi {
					to = append(to, st.to)
				}
			}
			if len(to) == 0 {
				next = append(next, -1)
				continue
			}
			id, err := intern(closure(to))
			if err != nil {
				return nil, err
			}
			next = append(next, id)
		}
	}
	n := len(sets)
	accept := make([]bool, n)
	for q, set := range sets {
		_, accept[q] = slices.BinarySearch(set, f.end)
	}
	// Keep the states that reach an accepting one.
	good := slices.Clone(accept)
	for changed := true; changed; {
		changed = false
		for q := range n {
			if good[q] {
				continue
			}
			for c := range d.nclass {
				if t := next[q*d.nclass+c]; t >= 0 && good[t] {
					good[q], changed = true, true
					break
				}
			}
		}
	}
	if !good[0] {
		return nil, nil
	}
	remap := make([]int32, n)
	k := int32(0)
	for q := range n {
		remap[q] = -1
		if good[q] {
			remap[q] = k
			k++
		}
	}
	for q := range n {
		if !good[q] {
			continue
		}
		live := false
		for c := range d.nclass {
			t := next[q*d.nclass+c]
			if t >= 0 {
				t = remap[t]
			}
			d.next = append(d.next, t)
			live = live || t >= 0
		}
		d.accept = append(d.accept, accept[q])
		d.live = append(d.live, live)
	}
	return d, nil
}
