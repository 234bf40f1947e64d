package server

import (
	"encoding/json"
	"sync"

	"github.com/llama2-go/llama2/grammar"
)

// grammarCache keeps the grammars of recent requests by their source: a
// grammar carries the masks it computed over the vocabulary (a walk of
// the vocabulary's trie per grammar position, tens of milliseconds at a
// 128k vocabulary), and clients send the same schema again and again.
type grammarCache struct {
	mu    sync.Mutex
	byKey map[string]*grammar.Grammar
	order []string // oldest first
}

// maxCachedGrammars bounds the cache; the oldest grammar goes first.
const maxCachedGrammars = 32

func (c *grammarCache) get(key string, build func() (*grammar.Grammar, error)) (*grammar.Grammar, error) {
	c.mu.Lock()
	g, ok := c.byKey[key]
	c.mu.Unlock()
	if ok {
		return g, nil
	}
	g, err := build()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = map[string]*grammar.Grammar{}
	}
	if _, ok := c.byKey[key]; !ok {
		if len(c.order) >= maxCachedGrammars {
			delete(c.byKey, c.order[0])
			c.order = c.order[1:]
		}
		c.byKey[key] = g
		c.order = append(c.order, key)
	}
	return g, nil
}

func (c *grammarCache) gbnf(src string) (*grammar.Grammar, error) {
	return c.get("gbnf\x00"+src, func() (*grammar.Grammar, error) { return grammar.Parse(src) })
}

func (c *grammarCache) schema(raw json.RawMessage) (*grammar.Grammar, error) {
	return c.get("schema\x00"+string(raw), func() (*grammar.Grammar, error) { return grammar.FromJSONSchema(raw) })
}
