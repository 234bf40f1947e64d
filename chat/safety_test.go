package chat

import (
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

func TestOutputCap(t *testing.T) {
	// 100000 iterations of 11 bytes: over 1 MiB from a short template.
	err := renderErr(t, "{% for i in range(100000) %}{{ 'xxxxxxxxxx' ~ i % 10 }}{% endfor %}")
	assert.Contains(t, err.Error(), "more than the 1048576 allowed")

	// Exactly at the cap is allowed, one byte over is not: the cap is on
	// the output, whatever makes it long (here the content itself).
	tmpl, err := Parse("{{ messages[0].content }}")
	require.NoError(t, err)
	out, err := tmpl.Render([]Message{{Role: "user", Content: strings.Repeat("a", MaxOutputBytes)}}, opts)
	require.NoError(t, err)
	assert.Len(t, out, MaxOutputBytes)
	_, err = tmpl.Render([]Message{{Role: "user", Content: strings.Repeat("a", MaxOutputBytes+1)}}, opts)
	assert.ErrorIs(t, err, ErrRender)
}

func TestRangeBudget(t *testing.T) {
	start := time.Now()
	// Without the budget the engine would try to build these lists.
	renderErr(t, "{{ range(10000000000) | length }}")
	renderErr(t, "{{ range(-9223372036854775807, 9223372036854775807, 3) | length }}")
	renderErr(t, "{{ range(0, -10000000000, -1) | length }}")
	// Nested loops: each range is small, together they exceed the budget.
	renderErr(t, "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}")
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
}
