package grammar

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGBNFMatch(t *testing.T) {
	for _, tc := range []struct {
		src     string
		yes, no []string
	}{
		{`root ::= "a" | "bc"`, []string{"a", "bc"}, []string{"", "b", "abc", "ab"}},
		{`root ::= [a-c]+ "!"`, []string{"a!", "abcab!"}, []string{"!", "ad!", "a"}},
		{`root ::= [^a-c]`, []string{"d", "é", "☕", "\x00"}, []string{"a", "", "dd", "\xff"}},
		{`root ::= "x"{2,3}`, []string{"xx", "xxx"}, []string{"x", "xxxx"}},
		{`root ::= "x"{2}`, []string{"xx"}, []string{"x", "xxx"}},
		{`root ::= "x"{2,} "y"?`, []string{"xx", "xxxxy", "xxy"}, []string{"x", "xy"}},
		{`root ::= .`, []string{"a", "é", "😀"}, []string{"", "ab"}},
		{"root ::= a b\na ::= \"1\" | \"\"\nb ::= \"2\"", []string{"12", "2"}, []string{"1", ""}},
		// Recursion: balanced parentheses.
		{`root ::= "(" root ")" root | ""`, []string{"", "()", "(())()", "((()))"}, []string{"(", ")(", "(()"}},
		// Recursion inside a repetition (desugared into rules).
		{"root ::= list\nlist ::= \"[\" (list (\",\" list)*)? \"]\"", []string{"[]", "[[]]", "[[],[[]]]"}, []string{"[", "[,]", "[[]],"}},
		{"root ::= item{2,3}\nitem ::= \"<\" root? \">\"", []string{"<><>", "<<><>><>", "<><><>"}, []string{"<>", "<><><><>"}},
		// Escapes.
		{`root ::= "\x41\u00e9\n\"" [\]\\]`, []string{"Aé\n\"]", "Aé\n\"\\"}, []string{"Aé\n\""}},
		// Comments, newlines inside parentheses and after | and ::=.
		{"# c\nroot ::=\n  ( \"a\" # one\n  | \"b\" ) |\n  \"c\"\n", []string{"a", "b", "c"}, []string{"ab"}},
	} {
		g, err := Parse(tc.src)
		require.NoError(t, err, tc.src)
		for _, s := range tc.yes {
			require.True(t, g.Match([]byte(s)), "%s should match %q", tc.src, s)
		}
		for _, s := range tc.no {
			require.False(t, g.Match([]byte(s)), "%s should not match %q", tc.src, s)
		}
	}
}

func TestGBNFErrors(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want error
		msg  string
	}{
		{``, ErrSyntax, "no rules"},
		{`root ::= "a`, ErrSyntax, "unterminated string"},
		{`root ::= [a-`, ErrSyntax, "unterminated character class"},
		{`root ::= ("a"`, ErrSyntax, "unclosed parenthesis"},
		{`root = "a"`, ErrSyntax, "expected ::="},
		{`root ::= "a"{3,1}`, ErrSyntax, "below the minimum"},
		{`root ::= "a"{99999}`, ErrSyntax, "above"},
		{`root ::= "\q"`, ErrSyntax, "unknown escape"},
		{`root ::= [z-a]`, ErrSyntax, "reversed"},
		{`root ::= <think>`, ErrSyntax, "token references"},
		{"root ::= " + strings.Repeat("(", 300) + `"a"` + strings.Repeat(")", 300), ErrSyntax, "nested more than"},
		{"root ::= \"a\" )", ErrSyntax, "end of the line"},
		{`root ::= x`, ErrInvalid, `"x", which is not defined`},
		{`other ::= "a"`, ErrInvalid, "no rule named root"},
		{"root ::= \"a\"\nroot ::= \"b\"", ErrInvalid, "defined twice"},
		{`root ::= root "a" | "b"`, ErrInvalid, "left-recursive"},
		{"root ::= e root | \"b\"\ne ::= \"\"", ErrInvalid, "left-recursive"},
		{`root ::= [^\x00-\U0010FFFF]`, ErrEmpty, ""},
		{`root ::= "a" root`, ErrEmpty, ""},
		{"root ::= \"a\" never\nnever ::= \"b\" never", ErrEmpty, ""},
	} {
		_, err := Parse(tc.src)
		require.ErrorIs(t, err, tc.want, tc.src)
		require.ErrorContains(t, err, tc.msg, tc.src)
	}
	var se *SyntaxError
	_, err := Parse("root ::= \"a\"\nb ::= [")
	require.True(t, errors.As(err, &se))
	require.Equal(t, 2, se.Line)
}

// TestGBNFPrunesDeadEnds: an alternative that can never finish is dropped,
// so a matcher never lets a token into it.
func TestGBNFPrunesDeadEnds(t *testing.T) {
	g, err := Parse("root ::= \"a\" | \"b\" never\nnever ::= \"c\" never")
	require.NoError(t, err)
	require.True(t, g.Match([]byte("a")))
	tok := testVocab("a", "b", "c")
	m := g.NewMatcher(NewTokens(tok))
	require.Equal(t, []int{0}, allowedIDs(m))
}

func TestGBNFLargeRepeatFails(t *testing.T) {
	_, err := Parse(`root ::= ([a-z]{100}){100}{100}`)
	require.ErrorIs(t, err, ErrTooLarge)
	require.True(t, strings.Contains(err.Error(), "root"))
}
