package grammar

import (
	"encoding/binary"
	"slices"
)

// The pushdown side of the matcher. A stack of frames says where the
// output is in the grammar: the top frame is inside an automaton (pos, its
// state q), the ones below it are where to continue when the rule above
// ends. Grammars are ambiguous, so the matcher follows a set of stacks.
// Frames are interned (a stack is the id of its top frame, and equal
// stacks have equal ids), and so are sets of stacks, so that a set's step
// by a byte is computed once and remembered.

// Parents below the last frame.
const (
	bottom int32 = -1 // below root: popping to it completes the grammar
	opaque int32 = -2 // the unknown rest of a stack (a context's walk)
)

type frame struct{ pos, q, parent int32 }

// stackSet is an interned set of stacks.
type stackSet struct {
	tops   []int32 // frame ids, sorted: each a stack with a byte to read
	accept bool    // a stack popped to bottom: the grammar may end here
	exit   bool    // a stack popped into opaque: what follows is unknown
	// The steps computed so far: a few in a list, then a table (a map
	// lookup per byte was half of a vocabulary walk's time).
	few  []setStep
	next *[256]int32 // the set after each byte, plus one; 0: not yet known
}

type setStep struct {
	b  byte
	to int32
}

// maxFewSteps is how many steps a set lists before it gets a table.
const maxFewSteps = 8

// dead is the id of the empty set, interned first.
const dead int32 = 0

type stacks struct {
	g      *Grammar
	frames []frame
	ids    map[frame]int32
	sets   []stackSet
	setIDs map[string]int32

	// closure's scratch
	seen   []uint32 // frame id -> the epoch it was expanded in
	epoch  uint32
	out    []int32
	accept bool
	exit   bool
	key    []byte
}

func newStacks(g *Grammar) *stacks {
	st := &stacks{g: g, ids: map[frame]int32{}, setIDs: map[string]int32{}}
	st.intern(nil, false, false)
	return st
}

func (st *stacks) frame(f frame) int32 {
	if id, ok := st.ids[f]; ok {
		return id
	}
	id := int32(len(st.frames))
	st.frames = append(st.frames, f)
	st.ids[f] = id
	return id
}

func (st *stacks) intern(tops []int32, accept, exit bool) int32 {
	k := st.key[:0]
	for _, t := range tops {
		k = binary.LittleEndian.AppendUint32(k, uint32(t))
	}
	var flags byte
	if accept {
		flags |= 1
	}
	if exit {
		flags |= 2
	}
	k = append(k, flags)
	st.key = k
	if id, ok := st.setIDs[string(k)]; ok {
		return id
	}
	id := int32(len(st.sets))
	st.sets = append(st.sets, stackSet{tops: slices.Clone(tops), accept: accept, exit: exit})
	st.setIDs[string(k)] = id
	return id
}

// begin starts a closure batch.
func (st *stacks) begin() {
	st.epoch++
	st.out, st.accept, st.exit = st.out[:0], false, false
}

// end interns the batch's set.
func (st *stacks) end() int32 {
	slices.Sort(st.out)
	st.out = slices.Compact(st.out)
	return st.intern(st.out, st.accept, st.exit)
}

// closure adds the stacks that reach a byte from frame (pos, q, parent):
// the frame itself if its automaton state reads bytes, and, where the
// automaton may stop, whatever follows it (the next element, a rule's
// alternatives, the parent's continuation).
func (st *stacks) closure(pos, q, parent int32) {
	id := st.frame(frame{pos, q, parent})
	if int(id) >= len(st.seen) {
		st.seen = append(st.seen, make([]uint32, int(id)+1-len(st.seen)+64)...)
	}
	if st.seen[id] == st.epoch {
		return
	}
	st.seen[id] = st.epoch
	g := st.g
	switch e := g.elems[pos]; e.kind {
	case elemEnd:
		switch parent {
		case bottom:
			st.accept = true
		case opaque:
			st.exit = true
		default:
			p := st.frames[parent]
			st.closure(p.pos, p.q, p.parent)
		}
	case elemDFA:
		d := g.dfas[e.dfa]
		if d.live[q] {
			st.out = append(st.out, id)
		}
		if d.accept[q] {
			st.closure(pos+1, 0, parent)
		}
	case elemRef:
		next := parent
		if g.elems[pos+1].kind != elemEnd { // no frame for a tail call
			next = st.frame(frame{pos + 1, 0, parent})
		}
		for _, a := range g.alts[e.rule] {
			st.closure(a, 0, next)
		}
	}
}

// start is the set of stacks at the beginning of the output.
func (st *stacks) start() int32 {
	st.begin()
	for _, a := range st.g.alts[st.g.root] {
		st.closure(a, 0, bottom)
	}
	return st.end()
}

// top is the set holding the single stack whose top frame is (pos, q) over
// parent.
func (st *stacks) top(pos, q, parent int32) int32 {
	st.begin()
	st.closure(pos, q, parent)
	return st.end()
}

// step is the set after reading b.
func (st *stacks) step(set int32, b byte) int32 {
	if s := &st.sets[set]; s.next != nil {
		if to := s.next[b]; to != 0 {
			return to - 1
		}
	} else {
		for _, x := range s.few {
			if x.b == b {
				return x.to
			}
		}
	}
	st.begin()
	for _, id := range st.sets[set].tops {
		f := st.frames[id]
		d := st.g.dfas[st.g.elems[f.pos].dfa]
		if q := d.step(f.q, b); q >= 0 {
			st.closure(f.pos, q, f.parent)
		}
	}
	to := st.end()
	s := &st.sets[set] // end may have grown st.sets
	switch {
	case s.next != nil:
		s.next[b] = to + 1
	case len(s.few) < maxFewSteps:
		s.few = append(s.few, setStep{b, to})
	default:
		s.next = new([256]int32)
		for _, x := range s.few {
			s.next[x.b] = x.to + 1
		}
		s.next[b] = to + 1
		s.few = nil
	}
	return to
}

// run reads bs from set; it stops early at the dead set.
func (st *stacks) run(set int32, bs []byte) int32 {
	for _, b := range bs {
		if set = st.step(set, b); set == dead {
			return dead
		}
	}
	return set
}

// alive reports whether the set has a stack to continue or has completed.
func (st *stacks) alive(set int32) bool {
	s := &st.sets[set]
	return len(s.tops) > 0 || s.accept
}
