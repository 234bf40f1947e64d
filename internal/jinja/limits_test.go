package jinja

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func renderLimited(t *testing.T, src string, lim Limits) (string, error) {
	t.Helper()
	tmpl, err := Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl.RenderContext(context.Background(), map[string]Value{"n": NewInt(3)}, lim)
}

// TestLimitsOnlyWhenAsked: without limits the fork renders as upstream;
// each limit stops what it bounds, with ErrLimit.
func TestLimitsOnlyWhenAsked(t *testing.T) {
	loop := `{% for i in range(100) %}{{ i }}{% endfor %}`
	want := ""
	for i := range 100 {
		want += itoa(i)
	}
	out, err := renderLimited(t, loop, Limits{})
	if err != nil || out != want {
		t.Fatalf("no limits: %q, %v", out, err)
	}
	for name, lim := range map[string]Limits{
		"steps":  {MaxSteps: 50},
		"output": {MaxOutput: 50},
		"alloc":  {MaxAlloc: 50},
	} {
		if _, err := renderLimited(t, loop, lim); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: %v, want ErrLimit", name, err)
		}
	}
	if _, err := renderLimited(t, loop, Limits{Deadline: time.Now().Add(-time.Second)}); !errors.Is(err, ErrLimit) {
		t.Errorf("deadline: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tmpl, _ := Compile(loop)
	if _, err := tmpl.RenderContext(ctx, nil, Limits{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func itoa(i int) string { return NewInt(int64(i)).String() }

func TestWeighSharedValues(t *testing.T) {
	// 40 doublings of a shared list: 2^40 elements to print, 80 references
	// to build.
	src := `{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}`
	for _, use := range []string{"{{ ns.l }}", "{{ ns.l|tojson }}", "{{ ns.l == ns.l }}", "{{ 1 in ns.l }}", "{{ ns.l|string }}", "{{ ns.l ~ '' }}"} {
		start := time.Now()
		_, err := renderLimited(t, src+use, Limits{MaxSteps: 1_000_000, MaxDepth: 100, MaxAlloc: 1 << 24})
		if !errors.Is(err, ErrLimit) {
			t.Errorf("%s: %v, want ErrLimit", use, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %v", use, d)
		}
	}
}

func TestPythonConcatErrors(t *testing.T) {
	for src, want := range map[string]string{
		`{{ 'a' + {} }}`:  `can only concatenate str (not "dict") to str`,
		`{{ 'a' + 1 }}`:   `can only concatenate str (not "int") to str`,
		`{{ [1] + 'a' }}`: `unsupported operand type(s) for +: 'list' and 'str'`,
	} {
		if _, err := renderLimited(t, src, Limits{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
	if out, err := renderLimited(t, `{{ 'a' + 'b' }}{{ 'a' + undefined_name }}`, Limits{}); err != nil || out != "aba" {
		t.Errorf("str + str, str + undefined: %q, %v", out, err)
	}
}

func TestSizeBounds(t *testing.T) {
	if got := replaceSize("aaa", "a", "bb"); got != 6 {
		t.Errorf("replaceSize: %d, want 6", got)
	}
	if got := replaceSize("ab", "", "xy"); got != 2+3*2 {
		t.Errorf("replaceSize of an empty old: %d", got)
	}
	if got := lineBreaks("a\nb\r\nc"); got != 3 {
		t.Errorf("lineBreaks: %d (an upper bound of 2 breaks)", got)
	}
}
