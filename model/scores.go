package model

// scores is scratch room for attention scores: rows rows (one a head, or a
// head and token of a batch) of up to limit positions each (the context).
// It grows with the positions a session actually reaches rather than
// being sized by the context up front, which a file sets: heads x batch x
// context floats would be 2 GiB for a 128k-context Llama 3.2 1B prompt
// batch, and terabytes for a hostile header.
type scores struct {
	buf    []float32
	rows   int
	stride int // positions a row holds now
	limit  int
}

// initialScoreRows is the positions a row holds before it grows.
const initialScoreRows = 512

func newScores(rows, limit int) scores {
	s := scores{rows: rows, limit: limit}
	s.reserve(min(limit, initialScoreRows))
	return s
}

// reserve makes room for n positions a row, at least doubling the rows
// when it grows, so that a session reallocates O(log context) times.
func (s *scores) reserve(n int) {
	if n <= s.stride {
		return
	}
	s.stride = min(s.limit, max(n, 2*s.stride))
	s.buf = make([]float32, s.rows*s.stride)
}

// row returns the first n positions of row r (n <= the reserved room).
func (s *scores) row(r, n int) []float32 {
	return s.buf[r*s.stride : r*s.stride+n]
}
