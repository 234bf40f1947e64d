package grammar

import (
	"fmt"
	"strconv"
	"strings"
)

// intRange is a GBNF expression for the decimal integers in [lo, hi] as
// JSON writes them (no leading zeros, "-" for negatives); a nil bound is
// open. The digits are split into ranges whose numbers have the same
// length, each written digit by digit.
func intRange(lo, hi *int64) string {
	var alts []string
	// Negatives: -v for v in [max(1, -hi), -lo].
	if lo == nil || *lo < 0 {
		var vlo uint64 = 1
		if hi != nil && *hi < 0 {
			vlo = uint64(-*hi)
		}
		var vhi *uint64
		if lo != nil {
			v := uint64(-*lo)
			vhi = &v
		}
		alts = append(alts, `"-" `+natRange(vlo, vhi))
	}
	if hi == nil || *hi >= 0 {
		var nlo uint64
		if lo != nil && *lo > 0 {
			nlo = uint64(*lo)
		}
		var nhi *uint64
		if hi != nil {
			v := uint64(*hi)
			nhi = &v
		}
		alts = append(alts, natRange(nlo, nhi))
	}
	return strings.Join(alts, " | ")
}

// natRange is the naturals in [lo, hi] (hi nil: unbounded).
func natRange(lo uint64, hi *uint64) string {
	var alts []string
	dl := len(strconv.FormatUint(lo, 10))
	dh := 20
	if hi != nil {
		dh = len(strconv.FormatUint(*hi, 10))
	}
	for d := dl; d <= dh; d++ {
		a := lo
		if d > dl {
			a = pow10(d - 1)
		}
		if hi == nil && d == dl+1 {
			// Any longer number: a first digit, then d-1 digits or more.
			alts = append(alts, fmt.Sprintf("[1-9] [0-9]{%d,}", d-1))
			break
		}
		b := pow10(d) - 1
		if d == 20 {
			b = ^uint64(0)
		}
		if hi != nil && d == dh {
			b = *hi
		}
		alts = append(alts, sameLength(strconv.FormatUint(a, 10), strconv.FormatUint(b, 10)))
	}
	if len(alts) == 1 {
		return alts[0]
	}
	return "( " + strings.Join(alts, " | ") + " )"
}

func pow10(n int) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}

// sameLength is the numbers from x to y, strings of one length.
func sameLength(x, y string) string {
	if x == y {
		return `"` + x + `"`
	}
	if len(x) == 1 {
		return "[" + x + "-" + y + "]"
	}
	rest := len(x) - 1
	if x[0] == y[0] {
		return `"` + x[:1] + `" ` + sameLength(x[1:], y[1:])
	}
	if strings.Trim(x[1:], "0") == "" && strings.Trim(y[1:], "9") == "" {
		return fmt.Sprintf("[%c-%c] [0-9]{%d}", x[0], y[0], rest)
	}
	var alts []string
	alts = append(alts, `"`+x[:1]+`" `+sameLength(x[1:], strings.Repeat("9", rest)))
	if x[0]+1 <= y[0]-1 {
		alts = append(alts, fmt.Sprintf("[%c-%c] [0-9]{%d}", x[0]+1, y[0]-1, rest))
	}
	alts = append(alts, `"`+y[:1]+`" `+sameLength(strings.Repeat("0", rest), y[1:]))
	return "( " + strings.Join(alts, " | ") + " )"
}
