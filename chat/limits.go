package chat

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/llama2-go/llama2/internal/jinja"
)

// Limits bound one render. The defaults (DefaultLimits) leave real chat
// templates far below them: with tools, the templates of Llama 3.1, 3.2,
// Qwen2.5, DeepSeek-R1 distill and Mistral Nemo render a 100-message
// conversation in 4,846 to 11,653 steps and under half a millisecond. A
// zero field takes the default; a negative one removes that limit.
type Limits struct {
	// Timeout is the longest a render may take.
	Timeout time.Duration
	// MaxSteps bounds the work: statements, expressions and loop
	// iterations, and the elements that filters, tests, comparisons and
	// printing walk, each one step.
	MaxSteps int64
	// MaxDepth bounds nested macro calls (recursion) and the nesting of
	// the values a template walks.
	MaxDepth int
	// MaxOutputBytes bounds the rendered text (and what any one macro or
	// block renders).
	MaxOutputBytes int
	// MaxMemoryBytes bounds the bytes of strings and lists a render builds,
	// summed over the render; an operation that would build more (a
	// repetition, |indent, |tojson(indent=...), |replace, % formatting) is
	// refused before it allocates.
	MaxMemoryBytes int64
}

// DefaultLimits are the limits of a render that asks for none.
var DefaultLimits = Limits{
	Timeout:        2 * time.Second,
	MaxSteps:       10_000_000,
	MaxDepth:       100,
	MaxOutputBytes: 4 << 20,
	MaxMemoryBytes: 128 << 20,
}

// MaxRangeItems is how many numbers all range() calls of one render may
// produce together (Jinja2's sandbox allows 100000 per call).
const MaxRangeItems = 100000

// withDefaults fills the zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.Timeout != 0 {
		d.Timeout = l.Timeout
	}
	if l.MaxSteps != 0 {
		d.MaxSteps = l.MaxSteps
	}
	if l.MaxDepth != 0 {
		d.MaxDepth = l.MaxDepth
	}
	if l.MaxOutputBytes != 0 {
		d.MaxOutputBytes = l.MaxOutputBytes
	}
	if l.MaxMemoryBytes != 0 {
		d.MaxMemoryBytes = l.MaxMemoryBytes
	}
	return d
}

// engine converts l (defaults applied) to the engine's limits, starting
// the clock.
func (l Limits) engine() jinja.Limits {
	e := jinja.Limits{MaxSteps: l.MaxSteps, MaxDepth: l.MaxDepth, MaxOutput: l.MaxOutputBytes, MaxAlloc: l.MaxMemoryBytes}
	if l.Timeout > 0 {
		e.Deadline = time.Now().Add(l.Timeout)
	}
	return e
}

// renderState is what one Render call shares with the Go functions it hands
// the template.
type renderState struct {
	raised    *string // raise_exception's message, once called
	rangeLeft int64   // numbers range() may still produce
	now       time.Time
}

// vars is the template's global namespace for one render. Names set here
// shadow the engine's global functions of the same name, which is how
// range, raise_exception and strftime_now replace the engine's.
func (st *renderState) vars(msgs []Message, opts Options) (map[string]jinja.Value, error) {
	messages, err := messageValues(msgs)
	if err != nil {
		return nil, err
	}
	v := map[string]jinja.Value{
		"messages":              messages,
		"add_generation_prompt": jinja.NewBool(opts.AddGenerationPrompt),
		"bos_token":             jinja.NewString(opts.BOSToken),
		"eos_token":             jinja.NewString(opts.EOSToken),
		"raise_exception":       jinja.NewCallable("raise_exception", st.raiseException),
		"range":                 jinja.NewCallable("range", st.rangeFn),
		"strftime_now":          jinja.NewCallable("strftime_now", st.strftimeNow),
	}
	for name, list := range map[string][]any{"tools": opts.Tools, "documents": opts.Documents} {
		if list == nil {
			continue
		}
		val, err := toValue(list, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		v[name] = val
	}
	return v, nil
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

// strftimeNow is Hugging Face's strftime_now(format): the render's time
// (Options.Now, or the current time) in Python's strftime format.
func (st *renderState) strftimeNow(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	if len(args) != 1 || !args[0].IsString() {
		return jinja.Undefined(), fmt.Errorf("strftime_now: expected one format string")
	}
	now := st.now
	if now.IsZero() {
		now = time.Now()
	}
	return jinja.NewString(strftime(now, args[0].AsString())), nil
}

// strftime formats t as C's strftime does in the C locale, for the
// directives templates use; others are kept as written.
func strftime(t time.Time, format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			b.WriteByte(c)
			continue
		}
		i++
		pad := true
		if format[i] == '-' && i+1 < len(format) { // glibc: no padding
			pad = false
			i++
		}
		num := func(n, width int) {
			s := strconv.Itoa(n)
			for pad && len(s) < width {
				s = "0" + s
			}
			b.WriteString(s)
		}
		switch format[i] {
		case 'Y':
			num(t.Year(), 4)
		case 'y':
			num(t.Year()%100, 2)
		case 'm':
			num(int(t.Month()), 2)
		case 'd':
			num(t.Day(), 2)
		case 'e':
			b.WriteString(fmt.Sprintf("%2d", t.Day()))
		case 'j':
			num(t.YearDay(), 3)
		case 'H':
			num(t.Hour(), 2)
		case 'I':
			num((t.Hour()+11)%12+1, 2)
		case 'M':
			num(t.Minute(), 2)
		case 'S':
			num(t.Second(), 2)
		case 'p':
			b.WriteString(map[bool]string{true: "PM", false: "AM"}[t.Hour() >= 12])
		case 'B':
			b.WriteString(t.Month().String())
		case 'b', 'h':
			b.WriteString(t.Month().String()[:3])
		case 'A':
			b.WriteString(t.Weekday().String())
		case 'a':
			b.WriteString(t.Weekday().String()[:3])
		case 'Z':
			zone, _ := t.Zone()
			b.WriteString(zone)
		case 'F':
			b.WriteString(t.Format("2006-01-02"))
		case 'T':
			b.WriteString(t.Format("15:04:05"))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			if !pad {
				b.WriteByte('-')
			}
			b.WriteByte(format[i])
		}
	}
	return b.String()
}

// rangeFn is Python's range (1 to 3 int arguments) with a per-render budget
// of MaxRangeItems numbers: the engine's own builds any length, so
// range(10**10) would exhaust memory before any limit saw it.
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
		return jinja.Undefined(), fmt.Errorf("%w: range: more than %d numbers in one render", jinja.ErrLimit, MaxRangeItems)
	}
	st.rangeLeft -= int64(n)
	items := make([]jinja.Value, n)
	for i := range items {
		items[i] = jinja.NewInt(start + int64(i)*step)
	}
	return jinja.NewList(items), nil
}
