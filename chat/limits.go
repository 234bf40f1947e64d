package chat

import (
	"fmt"

	"github.com/ardanlabs/jinja"
)

// renderState is what one Render call shares with the Go functions it hands
// the template.
type renderState struct {
	raised    *string // raise_exception's message, once called
	rangeLeft int64   // numbers range() may still produce
}

// vars is the template's global namespace for one render. Names set here
// shadow the engine's global functions of the same name, which is how
// range replaces the engine's unbounded one. (Filters cannot be replaced
// this way: the engine looks them up in its own table first.)
func (st *renderState) vars(msgs []Message, opts Options) map[string]jinja.Value {
	v := map[string]jinja.Value{
		"messages":              messageValues(msgs),
		"add_generation_prompt": jinja.NewBool(opts.AddGenerationPrompt),
		"bos_token":             jinja.NewString(opts.BOSToken),
		"eos_token":             jinja.NewString(opts.EOSToken),
		"raise_exception":       jinja.NewCallable("raise_exception", st.raiseException),
		"range":                 jinja.NewCallable("range", st.rangeFn),
	}
	if opts.Tools != nil {
		v["tools"] = jinja.FromGoValue(opts.Tools)
	}
	if opts.Documents != nil {
		v["documents"] = jinja.FromGoValue(opts.Documents)
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
