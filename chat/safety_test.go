package chat

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// renderErr parses src, renders conv with it and returns the error, which
// the caller expects to be a render error.
func renderErr(t *testing.T, src string) error {
	t.Helper()
	tmpl, err := Parse(src)
	require.NoError(t, err, src)
	out, err := tmpl.Render(conv, opts)
	require.Error(t, err, src)
	assert.ErrorIs(t, err, ErrRender, src)
	assert.NotErrorIs(t, err, ErrRaised, src)
	assert.Empty(t, out)
	return err
}

// hostile are templates that, without limits, end the process (stack
// overflow, out of memory) or never finish (issue 30's and more). Each
// must fail with ErrLimit quickly and leave the process as it was. They
// run with hostileLimits: smaller memory, output and step budgets than
// the defaults keep them fast under the race detector, and a long
// timeout lets the limit each one aims at be the one that stops it.
var hostile = []struct{ name, src, want string }{
	{"macro recursion", `{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(0) }}`, "nested more than 100 deep"},
	{"caller recursion", `{% macro f() %}{% call f() %}{% endcall %}{% endmacro %}{{ f() }}`, "nested more than 100 deep"},
	{"recursive loop", `{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}`, "nested more than 100 deep"},
	{"namespace string doubling", `{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}`, "would build more than"},
	{"namespace list doubling", `{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}`, "would build more than"},
	{"shared list doubling", `{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}`, "limit exceeded"},
	{"shared list compared", `{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l == ns.l }}`, "limit exceeded"},
	{"shared list to json", `{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l|tojson }}`, "limit exceeded"},
	{"deep list printed", `{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l }}`, "nested more than 100 deep"},
	{"replace in a loop", `{% set ns = namespace(s='a') %}{% for i in range(100) %}{% set ns.s = ns.s|replace('a', 'aa') %}{% endfor %}{{ ns.s|length }}`, "replace would build more than"},
	{"str.replace in a loop", `{% set ns = namespace(s='a') %}{% for i in range(100) %}{% set ns.s = ns.s.replace('a', 'aa') %}{% endfor %}{{ ns.s|length }}`, "str.replace would build more than"},
	{"indent", `{{ 'a'|indent(1000000000) }}`, "indent by 1000000000"},
	{"indent lines", "{{ ('a\\n' * 1000)|indent(1000000) }}", "indent by 1000000"},
	{"tojson indent", `{{ messages|tojson(indent=1000000000) }}`, "tojson with indent 1000000000"},
	{"repetition", `{{ 'a' * 100000000000 }}`, "repeating 100000000000 times"},
	{"list repetition", `{{ [1, 2] * 100000000000 }}`, "repeating 100000000000 times"},
	{"format", `{{ ('{}' * 10000).format('x' * 100000) }}`, "str.format would build more than"},
	{"percent", `{{ ('%999999d' * 200) % ((1,) * 200) }}`, "formatting could build more than"},
	{"join", `{{ range(100000)|join('x' * 10000) }}`, "join would build more than"},
	{"iterate a huge string", `{% for c in 'a' * 1000000 %}{% endfor %}`, "iterating over a string"},
	{"nested loops", `{% set s = 'a' * 100000 %}{% for x in s %}{% for y in s %}{% endfor %}{% endfor %}`, "more than 200000 steps"},
	{"nested ranges", `{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}`, "more than 100000 numbers"},
	{"output", `{% for i in range(100000) %}{{ 'x' * 50 }}{% endfor %}`, "output is longer than 1048576 bytes"},
	{"unique", `{{ range(100000)|list|unique|length }}`, "steps"},
}

var hostileLimits = Limits{Timeout: time.Minute, MaxSteps: 200_000, MaxOutputBytes: 1 << 20, MaxMemoryBytes: 16 << 20}

func TestHostileTemplates(t *testing.T) {
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	o := opts
	o.Limits = hostileLimits
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			tmpl, err := Parse(h.src)
			require.NoError(t, err)
			start := time.Now()
			out, err := tmpl.Render(conv, o)
			assert.ErrorIs(t, err, ErrLimit)
			assert.ErrorIs(t, err, ErrRender)
			assert.Contains(t, err.Error(), h.want)
			assert.Empty(t, out)
			assert.Less(t, time.Since(start), 10*time.Second, "limits fail fast")
		})
	}
	// The default limits stop them too; those that grow slowly are
	// stopped by the time limit, two seconds each, so only the others run
	// here.
	for _, h := range hostile {
		switch h.name {
		case "macro recursion", "caller recursion", "recursive loop", "indent", "tojson indent", "repetition",
			"list repetition", "format", "percent", "join", "nested ranges":
			assert.ErrorIs(t, renderErr(t, h.src), ErrLimit, h.name)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	assert.Less(t, after.HeapInuse, before.HeapInuse+64<<20, "nothing large is left behind")
}

// TestLimitsCanBeSet: an operator can tighten or lift every limit.
func TestLimitsCanBeSet(t *testing.T) {
	loop := `{% for i in range(50000) %}{{ i % 10 }}{% endfor %}`
	tmpl, err := Parse(loop)
	require.NoError(t, err)
	out, err := tmpl.Render(conv, opts)
	require.NoError(t, err, "within the defaults")
	assert.Len(t, out, 50000)
	for name, lim := range map[string]Limits{
		"steps":  {MaxSteps: 1000},
		"output": {MaxOutputBytes: 1000},
		"memory": {MaxMemoryBytes: 1000},
		"time":   {Timeout: time.Nanosecond},
	} {
		o := opts
		o.Limits = lim
		_, err := tmpl.Render(conv, o)
		assert.ErrorIs(t, err, ErrLimit, name)
		assert.ErrorIs(t, err, ErrRender, name)
	}
	o := opts
	o.Limits = Limits{MaxSteps: 1000}
	_, err = tmpl.Render(conv, o)
	assert.EqualError(t, err, "chat: template limit exceeded: more than 1000 steps")

	deep := `{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{% else %}done{% endif %}{% endmacro %}{{ f(150) }}`
	tmpl, err = Parse(deep)
	require.NoError(t, err)
	_, err = tmpl.Render(conv, opts)
	assert.ErrorIs(t, err, ErrLimit, "150 calls deep is over the default")
	o = opts
	o.Limits.MaxDepth = 200
	out, err = tmpl.Render(conv, o)
	require.NoError(t, err)
	assert.Equal(t, "done", out)

	o = opts
	o.Limits = Limits{MaxSteps: -1, MaxOutputBytes: -1, MaxMemoryBytes: -1, Timeout: -1}
	tmpl, err = Parse(`{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}`)
	require.NoError(t, err)
	out, err = tmpl.Render(conv, o)
	require.NoError(t, err, "negative limits lift them")
	assert.Len(t, out, 10_000_000)
}

// TestRenderCancelled: a render stops soon after its context ends, with
// the context's error, and a cancelled context stops it before it starts.
func TestRenderCancelled(t *testing.T) {
	tmpl, err := Parse(`{% set s = 'a' * 3000 %}{% for x in s %}{% for y in s %}{% endfor %}{% endfor %}`)
	require.NoError(t, err)
	o := opts
	o.Limits = Limits{MaxSteps: -1, Timeout: -1} // only the context stops it
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err = tmpl.RenderContext(ctx, conv, o)
	require.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, ErrRender)
	assert.NotErrorIs(t, err, ErrLimit)
	assert.Less(t, time.Since(start), time.Second)

	_, err = tmpl.RenderContext(ctx, conv, o)
	require.ErrorIs(t, err, context.Canceled)

	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = tmpl.RenderContext(ctx, conv, o)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
}

func TestRangeBudget(t *testing.T) {
	start := time.Now()
	// Without the budget the engine would try to build these lists.
	renderErr(t, "{{ range(10000000000) | length }}")
	renderErr(t, "{{ range(-9223372036854775807, 9223372036854775807, 3) | length }}")
	renderErr(t, "{{ range(0, -10000000000, -1) | length }}")
	renderErr(t, "{{ range('a') }}")
	assert.Less(t, time.Since(start), 5*time.Second, "limits must fail fast")

	// The budget is per render: the same template renders again and again.
	tmpl, err := Parse("{{ range(" + "100000" + ") | length }}")
	require.NoError(t, err)
	for range 3 {
		out, err := tmpl.Render(conv, opts)
		require.NoError(t, err)
		assert.Equal(t, "100000", out)
	}
}

func TestEnginePanicBecomesError(t *testing.T) {
	// A negative string repetition is "" as in Jinja2 (ardanlabs/jinja
	// before v1.9 reached strings.Repeat with it, which panicked).
	tmpl, err := Parse("{{ 'x' * -1 }}|{{ [0] * -1 }}")
	require.NoError(t, err)
	out, err := tmpl.Render(conv, opts)
	require.NoError(t, err)
	assert.Equal(t, "|[]", out)

	// A panic in the engine is an error, never a crash: a Template without
	// a compiled engine panics inside it.
	out, err = (&Template{}).Render(conv, opts)
	require.ErrorIs(t, err, ErrRender)
	assert.Contains(t, err.Error(), "panicked")
	assert.Empty(t, out)
}

func TestSourceCap(t *testing.T) {
	_, err := Parse(strings.Repeat("a", MaxSourceBytes+1))
	assert.ErrorIs(t, err, ErrSyntax)
	tmpl, err := Parse(strings.Repeat("a", MaxSourceBytes))
	require.NoError(t, err)
	out, err := tmpl.Render(nil, Options{})
	require.NoError(t, err)
	assert.Len(t, out, MaxSourceBytes)

	// Brackets nested past what any template needs are refused before the
	// recursive parser sees them; block tags nested as deep still parse.
	_, err = Parse("{{ " + strings.Repeat("(", 300000) + "1" + strings.Repeat(")", 300000) + " }}")
	assert.ErrorIs(t, err, ErrSyntax)
	assert.ErrorContains(t, err, "brackets nest more than 256 deep")
	_, err = Parse("{{ " + strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200) + " }}")
	require.NoError(t, err)
}
