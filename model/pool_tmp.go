package model

type pool struct{ n int }

func newPool(threads int) *pool { return &pool{threads} }
func (p *pool) threads() int    { return p.n }
func (p *pool) close()          {}
func (p *pool) run(n, grain int, body func(lo, hi int)) {
	body(0, n)
}
