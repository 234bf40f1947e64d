package model

import "bytes"

// stopFilter holds back text that may be the start of a stop string and
// cuts the text at the first stop string.
type stopFilter struct {
	stops [][]byte
	held  []byte
}

func (f *stopFilter) set(stops []string) {
	for _, s := range stops {
		if s != "" {
			f.stops = append(f.stops, []byte(s))
		}
	}
}

// push adds text and returns what can be released; matched reports a stop
// string, in which case the text before it is released and the rest dropped.
func (f *stopFilter) push(text []byte) (out []byte, matched bool) {
	f.held = append(f.held, text...)
	at := -1
	for _, s := range f.stops {
		if i := bytes.Index(f.held, s); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at >= 0 {
		out = bytes.Clone(f.held[:at])
		f.held = f.held[:0]
		return out, true
	}
	// Keep the longest suffix that is a proper prefix of a stop string. It
	// starts where a stop string starts, so at a character boundary.
	keep := 0
	for _, s := range f.stops {
		for k := min(len(s)-1, len(f.held)); k > keep; k-- {
			if bytes.HasSuffix(f.held, s[:k]) {
				keep = k
				break
			}
		}
	}
	if len(f.held) == keep {
		return nil, false
	}
	out = bytes.Clone(f.held[:len(f.held)-keep])
	f.held = append(f.held[:0], f.held[len(f.held)-keep:]...)
	return out, false
}

// flush releases the held text at the end of a generation without a match.
func (f *stopFilter) flush() []byte {
	out := f.held
	f.held = nil
	return out
}
