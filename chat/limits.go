package chat

import (
	"fmt"
	"sync"

	"github.com/ardanlabs/jinja"
)

// renderState is what one Render call shares with the Go functions it hands
// the template.
type renderState struct {
	raised    *string // raise_exception's message, once called
	rangeLeft int64   // numbers range() may still produce
}

// vars is the template's global namespace for one render. Names set here
// shadow the engine's builtins of the same name, which is how range and
// the guarded filters replace the engine's unbounded ones.
func (st *renderState) vars(msgs []Message, opts Options) map[string]jinja.Value {
	v := map[string]jinja.Value{
		"messages":              messageValues(msgs),
		"add_generation_prompt": jinja.NewBool(opts.AddGenerationPrompt),
		"bos_token":             jinja.NewString(opts.BOSToken),
		"eos_token":             jinja.NewString(opts.EOSToken),
		"raise_exception":       jinja.NewCallable("raise_exception", st.raiseException),
		"range":                 jinja.NewCallable("range", st.rangeFn),
	}
	for name, g := range guardedFilters() {
		v[filterPrefix+name] = g
	}
	return v
}

// raiseException records the template's message; Render turns it into a
// *RaisedError whatever the engine does with the error returned here.
func (st *renderState) raiseException(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	msg := ""
	switch {
	case len(args) == 0:
	case args[0].IsString():
		msg = args[0].AsString()
	default:
		// String is Python's repr, which for non-strings is also str.
		msg = args[0].String()
	}
	if st.raised == nil {
		st.raised = &msg
	}
	return jinja.Undefined(), fmt.Errorf("raise_exception: %s", msg)
}

// rangeFn is Python's range (1 to 3 int arguments) with a per-render budget
// of MaxRangeItems numbers: the engine's own builds any length, so
// range(10**10) would exhaust memory and nested ranges multiply.
func (st *renderState) rangeFn(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	var start, stop, step int64 = 0, 0, 1
	ints := make([]int64, len(args))
	for i, a := range args {
		if !a.IsInt() {
			return jinja.Undefined(), fmt.Errorf("range: argument %d is %s, not an integer", i+1, a.String())
		}
		ints[i] = a.AsInt()
	}
	switch len(ints) {
	case 1:
		stop = ints[0]
	case 2:
		start, stop = ints[0], ints[1]
	case 3:
		start, stop, step = ints[0], ints[1], ints[2]
	default:
		return jinja.Undefined(), fmt.Errorf("range: expected 1 to 3 arguments, got %d", len(ints))
	}
	if step == 0 {
		return jinja.Undefined(), fmt.Errorf("range: step must not be zero")
	}
	// Count before building so a huge range fails without allocating.
	// In uint64 the distance between two int64s cannot overflow.
	var n uint64
	switch {
	case step > 0 && start < stop:
		n = (uint64(stop)-uint64(start)-1)/uint64(step) + 1
	case step < 0 && start > stop:
		n = (uint64(start)-uint64(stop)-1)/(-uint64(step)) + 1
	}
	if n > uint64(st.rangeLeft) {
		return jinja.Undefined(), fmt.Errorf("range: more than %d numbers in one render", MaxRangeItems)
	}
	st.rangeLeft -= int64(n)
	items := make([]jinja.Value, n)
	for i := range items {
		items[i] = jinja.NewInt(start + int64(i)*step)
	}
	return jinja.NewList(items), nil
}

// filterPrefix is how the engine (v1.8.0) names filters in its scope;
// a variable of that name shadows the filter. The tests check that the
// guards are in force, so an engine that changes this fails them.
const filterPrefix = "__filter_"

// guardedFilters wraps the engine's filters whose arguments size an
// allocation with no bound: |indent(width) and |tojson(indent=n) call
// strings.Repeat with the template's number, and a huge one ends the
// process with an out-of-memory error no recover can catch.
var guardedFilters = sync.OnceValue(func() map[string]jinja.Value {
	orig := engineFilters("indent", "tojson")
	g := make(map[string]jinja.Value, len(orig))
	if f, ok := orig["indent"]; ok {
		g["indent"] = guard(f, 1, "width")
	}
	if f, ok := orig["tojson"]; ok {
		g["tojson"] = guard(f, -1, "indent")
	}
	return g
})

// guard returns filter f refusing a width argument (positional argument
// pos counting the filtered value as 0, or keyword kw) over MaxIndent.
func guard(f jinja.Value, pos int, kw string) jinja.Value {
	call := f.AsCallable()
	return jinja.NewCallable(call.Name, func(args []jinja.Value, kwargs map[string]jinja.Value) (jinja.Value, error) {
		check := func(v jinja.Value) error {
			if v.IsInt() && (v.AsInt() < 0 || v.AsInt() > MaxIndent) {
				return fmt.Errorf("%s: %s %d is outside 0..%d", call.Name, kw, v.AsInt(), MaxIndent)
			}
			return nil
		}
		if pos > 0 && pos < len(args) {
			if err := check(args[pos]); err != nil {
				return jinja.Undefined(), err
			}
		}
		if v, ok := kwargs[kw]; ok {
			if err := check(v); err != nil {
				return jinja.Undefined(), err
			}
		}
		return call.Fn(args, kwargs)
	})
}

// engineFilters fetches the engine's own filter values by name. The engine
// does not export them, but its templates can see them, so a tiny template
// hands them to a Go callable.
func engineFilters(names ...string) map[string]jinja.Value {
	found := map[string]jinja.Value{}
	for _, name := range names {
		t, err := jinja.Compile("{{ grab(" + filterPrefix + name + ") }}")
		if err != nil {
			continue
		}
		grab := jinja.NewCallable("grab", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
			if len(args) == 1 && args[0].IsCallable() {
				found[name] = args[0]
			}
			return jinja.NewString(""), nil
		})
		_, _ = t.RenderValues(map[string]jinja.Value{"grab": grab})
	}
	return found
}
