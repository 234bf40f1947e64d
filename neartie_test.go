package main

import (
	"math"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/tokenizer"
)

// requireNearTieDivergence checks that got, the output of a greedy run
// without a prompt (args -t 0), parts from the expected text want only at
// a near-tie. It replays want token by token (teacher forcing) and at every
// step requires want's token to be, within rounding, the argmax of this
// process's logits; at the step where got leaves want, got's token must be
// within rounding of the argmax too. For fp32 weights the bound is ten
// times model's requireLogitsClose (1e-5 of the largest |logit|, what
// summation order and fused multiply-adds change in one forward pass),
// since the runs' differences also build up over the positions before. Q8_0
// models quantize every activation, and a value one rounding away from a
// half-step rounds to the neighbouring int8 (1/127 of its group's largest
// value away): a few such flips carry the difference into the logits.
// Rounding all activations moves the logits by about 1.5% of their range
// (TestQ8LogitsCloseToFP32); the bound allows a fifth of that, 0.3%.
//
// got may come from another process and architecture (TestGoldenBinary
// runs the arm64 binary under qemu from a native test): only its text is
// read.
func requireNearTieDivergence(t require.TestingT, checkpoint, tokPath string, args []string, want, got string) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	require.Contains(t, [][]string{{"-t", "0"}, {"-t", "0.0"}}, args[:2], "only for greedy cases")
	// The command ends its output with a newline, which no token prints.
	want, got = strings.TrimSuffix(want, "\n"), strings.TrimSuffix(got, "\n")
	require.NotEqual(t, want, got)
	m, err := model.Open(checkpoint)
	require.NoError(t, err)
	defer m.Close()
	tok, err := modelTokenizer(m, tokPath, tokPath != "")
	require.NoError(t, err)
	s, err := m.NewSession(model.SessionOptions{Threads: 1})
	require.NoError(t, err)
	defer s.Close()
	// continuing returns the best-scoring token whose piece after prev
	// begins text, or -1.
	continuing := func(logits []float32, prev int, text string) int {
		tok1 := -1
		for i, v := range logits {
			if p := tok.Decode(prev, i); p != "" && strings.HasPrefix(text, p) && (tok1 < 0 || v > logits[tok1]) {
				tok1 = i
			}
		}
		return tok1
	}
	prev, off := tokenizer.BOS, 0
	for pos := 0; pos < m.Config.SeqLen && off < len(want); pos++ {
		logits, err := s.Forward(prev, pos)
		require.NoError(t, err)
		best, scale, lo := 0, 0.0, logits[0]
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
			scale, lo = max(scale, math.Abs(float64(v))), min(lo, v)
		}
		tol := 1e-4 * max(scale, 1)
		if m.Config.GroupSize > 0 {
			tol = 3e-3 * float64(logits[best]-lo)
		}
		exp := continuing(logits, prev, want[off:])
		require.GreaterOrEqual(t, exp, 0, "byte %d: no token continues the expected text", off)
		require.LessOrEqual(t, float64(logits[best]-logits[exp]), tol, "byte %d: %q (%v) beats the expected %q (%v) by more than rounding",
			off, tok.Decode(prev, best), logits[best], tok.Decode(prev, exp), logits[exp])
		piece := tok.Decode(prev, exp)
		rest := got[min(off, len(got)):]
		if strings.HasPrefix(rest, piece) {
			prev, off = exp, off+len(piece)
			continue
		}
		// got leaves want here: its token must be within rounding of the
		// best as well.
		other := continuing(logits, prev, rest)
		require.GreaterOrEqual(t, other, 0, "byte %d: no token continues the output %q", off, rest[:min(len(rest), 20)])
		gap := float64(logits[best] - logits[other])
		require.LessOrEqual(t, gap, tol, "byte %d: the output's %q (%v) trails the best %q (%v) by more than rounding",
			off, tok.Decode(prev, other), logits[other], tok.Decode(prev, best), logits[best])
		if l, ok := t.(interface{ Logf(string, ...any) }); ok {
			l.Logf("the output parts from the expected text at byte %d, a near-tie: %q vs expected %q (gap %.3g, bound %.3g)",
				off, tok.Decode(prev, other), piece, gap, tol)
		}
		return
	}
	t.Errorf("the output follows the expected text to its end: the difference is elsewhere")
	t.FailNow()
}

// failures records a check's failure instead of ending the test.
type failures struct{ msgs []string }

type failedNow struct{}

func (f *failures) Errorf(format string, args ...any) {
	f.msgs = append(f.msgs, strings.TrimSpace(strings.ReplaceAll(format, "\n", " ")))
}
func (f *failures) FailNow() { panic(failedNow{}) }

// check runs requireNearTieDivergence and returns its failures.
func (f *failures) check(checkpoint, tokPath, want, got string) []string {
	f.msgs = nil
	func() {
		defer func() {
			if v := recover(); v != nil && v != (failedNow{}) {
				panic(v)
			}
		}()
		requireNearTieDivergence(f, checkpoint, tokPath, []string{"-t", "0"}, want, got)
	}()
	return f.msgs
}

// TestNearTieCheck: the check accepts an output that parts from the Q8_0
// golden at its nearest tie, and refuses one that parts where the
// expected token leads clearly, one cut short, and one that does not part
// at all.
func TestNearTieCheck(t *testing.T) {
	checkpoint, tokPath := fixture(t, "stories260K-q80.bin"), fixture(t, "tok512.bin")
	b, err := os.ReadFile(fixture(t, "golden/stories260K-q80-greedy.txt"))
	require.NoError(t, err)
	want := strings.TrimSuffix(string(b), "\n")
	m, err := model.Open(checkpoint)
	require.NoError(t, err)
	defer m.Close()
	tok, err := tokenizer.Load(tokPath, m.Config.VocabSize)
	require.NoError(t, err)
	s, err := m.NewSession(model.SessionOptions{Threads: 1})
	require.NoError(t, err)
	defer s.Close()
	// Replay the golden; at each step note the runner-up (a token whose
	// piece does not continue it) and its gap to the golden's token.
	type step struct {
		off         int
		prev, other int
		gap         float32
	}
	var nearest, clearest step
	nearest.gap, clearest.gap = float32(math.Inf(1)), -1
	prev, off := tokenizer.BOS, 0
	for pos := 0; off < len(want) && pos < m.Config.SeqLen; pos++ {
		logits, err := s.Forward(prev, pos)
		require.NoError(t, err)
		exp, other := -1, -1
		for i, v := range logits {
			p := tok.Decode(prev, i)
			if p == "" {
				continue
			}
			if strings.HasPrefix(want[off:], p) {
				if exp < 0 || v > logits[exp] {
					exp = i
				}
			} else if other < 0 || v > logits[other] {
				other = i
			}
		}
		require.GreaterOrEqual(t, exp, 0)
		if g := logits[exp] - logits[other]; g < nearest.gap {
			nearest = step{off, prev, other, g}
		} else if g > clearest.gap {
			clearest = step{off, prev, other, g}
		}
		prev, off = exp, off+len(tok.Decode(prev, exp))
	}
	parted := func(st step) string { return want[:st.off] + tok.Decode(st.prev, st.other) + " and so on" }
	var f failures
	t.Logf("nearest tie at byte %d (gap %v), clearest lead at byte %d (gap %v)", nearest.off, nearest.gap, clearest.off, clearest.gap)
	require.Empty(t, f.check(checkpoint, tokPath, want, parted(nearest)), "parting at the nearest tie")
	require.NotEmpty(t, f.check(checkpoint, tokPath, want, parted(clearest)), "parting where the golden's token leads by %v", clearest.gap)
	require.NotEmpty(t, f.check(checkpoint, tokPath, want, want[:nearest.off]), "an output cut short")
	require.NotEmpty(t, f.check(checkpoint, tokPath, want, want+"more"), "an output that never parts")
	// Where the expected text itself takes the runner-up of a near-tie
	// (as a golden recorded on another machine may), the output must
	// still part from it at a near-tie: this process's own argmax there
	// says nothing about an output that goes astray (the check once
	// stopped at such a step without reading the output).
	require.NotEmpty(t, f.check(checkpoint, tokPath, parted(nearest), want[:nearest.off]+"XYZ garbage"),
		"an output that parts where the expected text takes a near-tie's runner-up, to text far from any tie")
	require.NotEmpty(t, f.check(checkpoint, tokPath, want, want+"\n"), "the same output")
}
