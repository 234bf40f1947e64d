package jinja

// This file is not part of github.com/ardanlabs/jinja: it is the budget
// the rest of the fork checks (see doc.go for every place that does).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"
)

// ErrLimit marks a render stopped by one of its Limits.
var ErrLimit = errors.New("template limit exceeded")

// Limits bound one render. A field at zero or below means no limit.
type Limits struct {
	// Deadline ends the render; zero: none. The context given to
	// RenderContext ends it too.
	Deadline time.Time
	// MaxSteps bounds the work: every statement, expression and loop
	// iteration is a step, and so is every element of the values that
	// filters, tests, comparisons and printing walk.
	MaxSteps int64
	// MaxDepth bounds nested macro calls (caller() and recursive loops
	// included) and the nesting of the values that are walked.
	MaxDepth int
	// MaxOutput bounds the text that one template, macro or block
	// renders, in bytes.
	MaxOutput int
	// MaxAlloc bounds the bytes of the strings and lists a render builds,
	// summed over the render. Operations that could build more (a string
	// repeated, indented, replaced or formatted) are refused before they
	// allocate.
	MaxAlloc int64
}

// limiter is one render's budget, shared by its nested evaluators. A nil
// limiter has no limits (Render and RenderValues).
type limiter struct {
	ctx      context.Context
	deadline time.Time
	lim      Limits
	steps    int64
	tick     int64 // steps left before the clock and context are read again
	depth    int
	alloc    int64
}

// clockEvery is how many steps pass between reads of the clock and the
// context: a step costs 0.1-0.2 µs (an empty loop turn, on a loaded
// machine), so a render notices its deadline or cancellation within about
// a millisecond, and the clock is read at most a few thousand times a
// second.
const clockEvery = 4096

func newLimiter(ctx context.Context, lim Limits) *limiter {
	return &limiter{ctx: ctx, deadline: lim.Deadline, lim: lim, tick: clockEvery}
}

func limitErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrLimit, fmt.Sprintf(format, args...))
}

// step counts n steps and checks the deadline and context now and then.
func (l *limiter) step(n int64) error {
	if l == nil {
		return nil
	}
	l.steps += n
	if l.lim.MaxSteps > 0 && l.steps > l.lim.MaxSteps {
		return limitErr("more than %d steps", l.lim.MaxSteps)
	}
	if l.tick -= n; l.tick > 0 {
		return nil
	}
	l.tick = clockEvery
	return l.check()
}

// check reports a cancelled context or a passed deadline.
func (l *limiter) check() error {
	if l.ctx != nil {
		if err := l.ctx.Err(); err != nil {
			return fmt.Errorf("render stopped: %w", context.Cause(l.ctx))
		}
	}
	if !l.deadline.IsZero() && time.Now().After(l.deadline) {
		return limitErr("render took longer than its time limit")
	}
	return nil
}

// enter and leave bracket a macro call.
func (l *limiter) enter() error {
	if l == nil {
		return nil
	}
	l.depth++
	if l.lim.MaxDepth > 0 && l.depth > l.lim.MaxDepth {
		l.depth--
		return limitErr("macro calls nested more than %d deep", l.lim.MaxDepth)
	}
	return l.step(1)
}

func (l *limiter) leave() {
	if l != nil {
		l.depth--
	}
}

// allocLeft is how many more bytes the render may build.
func (l *limiter) allocLeft() int64 {
	if l == nil || l.lim.MaxAlloc <= 0 {
		return 1<<63 - 1
	}
	return max(0, l.lim.MaxAlloc-l.alloc)
}

// need refuses an operation that would build n more bytes than allowed,
// before it builds them; what is built is charged afterwards (charge).
func (l *limiter) need(n int64, what string) error {
	if l == nil || l.lim.MaxAlloc <= 0 {
		return nil
	}
	if n < 0 || n > l.allocLeft() {
		return limitErr("%s would build more than the %d bytes a render may", what, l.lim.MaxAlloc)
	}
	return nil
}

// valueSize is what one list element takes.
const valueSize = int64(unsafe.Sizeof(Value{}))

// charge counts v's own storage, if it is a string or a list, against the
// allocation budget.
func (l *limiter) charge(v Value) error {
	if l == nil {
		return nil
	}
	var n int64
	switch v.kind {
	case KindString:
		n = int64(len(v.AsString()))
	case KindList:
		n = int64(v.AsList().Len()) * valueSize
	default:
		return nil
	}
	l.alloc += n
	if l.lim.MaxAlloc > 0 && l.alloc > l.lim.MaxAlloc {
		return limitErr("the render built more than %d bytes", l.lim.MaxAlloc)
	}
	return l.step(1 + n/256)
}

// weight is the size of a value walked as printing or comparing walks
// it: shared elements count every time they are reached.
type weight struct {
	nodes, bytes int64
	depth        int
}

// weigh walks v as the engine's printing, comparing and serialising
// functions would, counting one step per element, and refuses a value
// that is too large (more steps than are left, more bytes than the
// render may still build) or too deep, before the engine walks it. Such
// values can only be built by sharing: [x, x] in a loop doubles what
// printing it costs at each turn while it costs two references to build.
func (l *limiter) weigh(v Value) (weight, error) {
	if l == nil {
		return weight{}, nil
	}
	var w weight
	budget := int64(1<<63 - 1)
	if l.lim.MaxSteps > 0 {
		budget = l.lim.MaxSteps - l.steps
	}
	bytesLeft := l.allocLeft()
	err := l.walk(v, 1, &w, budget, bytesLeft)
	if err != nil {
		return w, err
	}
	return w, l.step(w.nodes)
}

func (l *limiter) walk(v Value, depth int, w *weight, budget, bytesLeft int64) error {
	w.nodes++
	w.depth = max(w.depth, depth)
	if w.nodes > budget {
		return limitErr("a value has more elements than the %d steps the render has left", budget)
	}
	if l.lim.MaxDepth > 0 && depth > l.lim.MaxDepth {
		return limitErr("a value is nested more than %d deep", l.lim.MaxDepth)
	}
	switch v.kind {
	case KindString:
		w.bytes += int64(len(v.AsString()))
	case KindList:
		w.bytes += 2
		for _, item := range v.AsList().Items {
			w.bytes += 2
			if err := l.walk(item, depth+1, w, budget, bytesLeft); err != nil {
				return err
			}
		}
	case KindDict:
		d := v.AsDict()
		w.bytes += 2
		for _, k := range d.Keys {
			w.bytes += int64(len(k)) + 4
			if err := l.walk(d.Data[k], depth+1, w, budget, bytesLeft); err != nil {
				return err
			}
		}
	default:
		w.bytes += 24 // a number's or a name's text
	}
	if w.bytes > bytesLeft {
		return limitErr("printing a value would build more than the %d bytes the render has left", bytesLeft)
	}
	return nil
}

// lineBreaks bounds how many lines Python's splitlines finds in s (it
// counts the continuation bytes of U+0085, U+2028 and U+2029 too).
func lineBreaks(s string) int64 {
	n := int64(0)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0xa8, 0xa9:
			n++
		}
	}
	return n
}

// replaceSize bounds the length of strings.Replace(s, old, new, -1).
func replaceSize(s, old, new string) int64 {
	count := int64(len(s) + 1) // old == "": before every rune, and at the end
	if old != "" {
		count = int64(strings.Count(s, old))
	}
	return int64(len(s)) + count*max(0, int64(len(new)-len(old)))
}

// checkFilter weighs a filter's arguments and refuses, before it runs, a
// filter that would build more than the render may (indent, tojson,
// replace, join) or work longer (unique, sort).
func (e *evaluator) checkFilter(name string, args []Value, kwargs map[string]Value) error {
	l := e.lim
	if l == nil || len(args) == 0 {
		return nil
	}
	w, err := l.weigh(args[0])
	if err != nil {
		return err
	}
	if err := e.weighAll(args[1:], kwargs); err != nil {
		return err
	}
	padLen := func(v Value) int64 {
		if v.IsString() {
			return int64(len(v.AsString()))
		}
		return max(0, toInt64(v))
	}
	switch name {
	case "indent":
		lines := w.bytes + 1
		if args[0].IsString() {
			lines = lineBreaks(args[0].AsString()) + 1
		}
		pad := padLen(builtinArgument(args, kwargs, 1, "width", NewInt(4)))
		if pad > 0 && lines > l.allocLeft()/pad {
			return limitErr("indent by %d would build more than the %d bytes the render has left", pad, l.allocLeft())
		}
		return l.need(w.bytes+pad*lines, "indent")
	case "tojson":
		indent := builtinArgument(args, kwargs, 2, "indent", None())
		pad := int64(0)
		if !indent.IsNone() && !indent.IsUndefined() {
			pad = padLen(indent)
		}
		perLine := int64(w.depth)*pad + 2
		if pad > 0 && w.nodes > l.allocLeft()/perLine {
			return limitErr("tojson with indent %d would build more than the %d bytes the render has left", pad, l.allocLeft())
		}
		return l.need(2*w.bytes+w.nodes*perLine, "tojson")
	case "replace":
		if len(args) >= 3 {
			return l.need(replaceSize(printValue(args[0]), printValue(args[1]), printValue(args[2])), "replace")
		}
	case "join":
		sep := int64(0)
		if len(args) > 1 {
			sep = int64(len(printValue(args[1])))
		}
		if d, ok := kwargs["d"]; ok {
			sep = int64(len(printValue(d)))
		}
		if sep > 0 && w.nodes > l.allocLeft()/sep {
			return limitErr("join would build more than the %d bytes the render has left", l.allocLeft())
		}
		return l.need(w.bytes+w.nodes*sep, "join")
	case "unique":
		n := int64(len(iterableItems(args[0])))
		return l.step(n * n) // every item against every item kept
	case "sort", "dictsort":
		n := int64(len(iterableItems(args[0])))
		return l.step(w.nodes * int64(bitsLen(n)))
	case "list", "items":
		if args[0].IsString() {
			return l.need(int64(len(args[0].AsString()))*valueSize, name)
		}
		return l.need(3*w.nodes*valueSize, name)
	}
	return nil
}

func bitsLen(n int64) int {
	b := 1
	for ; n > 1; n >>= 1 {
		b++
	}
	return b
}

// checkBinary refuses, before it runs, an operator that would build more
// than the render may, and weighs what comparisons and printing walk.
func (e *evaluator) checkBinary(op string, left, right Value) error {
	l := e.lim
	if l == nil {
		return nil
	}
	switch op {
	case "+":
		switch {
		case left.IsString() && right.IsString():
			return l.need(int64(len(left.AsString()))+int64(len(right.AsString())), "+")
		case left.IsList() && right.IsList():
			return l.need(int64(left.AsList().Len()+right.AsList().Len())*valueSize, "+")
		}
	case "*":
		seq, count := left, right
		if !count.IsInt() {
			seq, count = right, left
		}
		if !count.IsInt() || count.AsInt() <= 0 {
			return nil
		}
		size := int64(0)
		switch {
		case seq.IsString():
			size = int64(len(seq.AsString()))
		case seq.IsList():
			size = int64(seq.AsList().Len()) * valueSize
		}
		if size > 0 && count.AsInt() > l.allocLeft()/size {
			return limitErr("repeating %d times would build more than the %d bytes the render has left", count.AsInt(), l.allocLeft())
		}
	case "~":
		wl, err := l.weigh(left)
		if err != nil {
			return err
		}
		wr, err := l.weigh(right)
		if err != nil {
			return err
		}
		return l.need(wl.bytes+wr.bytes, "~")
	case "%":
		if !left.IsString() {
			return nil
		}
		w, err := l.weigh(right)
		if err != nil {
			return err
		}
		// Go's fmt caps a width or precision at 1e6.
		format := left.AsString()
		directives := int64(strings.Count(format, "%"))
		if directives > l.allocLeft()/1e6 {
			return limitErr("%% formatting could build more than the %d bytes the render has left", l.allocLeft())
		}
		return l.need(int64(len(format))+directives*1e6+w.bytes, "%")
	case "==", "!=", "<", ">", "<=", ">=":
		if _, err := l.weigh(left); err != nil {
			return err
		}
		_, err := l.weigh(right)
		return err
	case "in", "not in":
		wl, err := l.weigh(left)
		if err != nil {
			return err
		}
		if _, err := l.weigh(right); err != nil {
			return err
		}
		if right.IsList() {
			return l.step(int64(right.AsList().Len()) * wl.nodes)
		}
	}
	return nil
}
