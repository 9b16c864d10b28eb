package token

import (
	"strings"
	"sync"
	"sync/atomic"
)

// An issuer's tokens share a handful of header segments (one per kid), so
// their parse is cached by the segment's exact text. Only headers of tokens
// that fully verified are added: a forger cannot fill the cache, and a hit
// is indistinguishable from re-parsing the same bytes.
const maxCachedHeaders = 64

type headerCache struct {
	mu sync.Mutex // serialises writers; readers only load the pointer
	m  atomic.Pointer[map[string]header]
}

func (c *headerCache) get(seg string) (header, bool) {
	m := c.m.Load()
	if m == nil {
		return header{}, false
	}
	h, ok := (*m)[seg]
	return h, ok
}

func (c *headerCache) put(seg string, h header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	next := make(map[string]header, maxCachedHeaders)
	// Starting over when full keeps the bound without bookkeeping; headers
	// in use come back after one miss each.
	if old != nil && len(*old) < maxCachedHeaders {
		if _, ok := (*old)[seg]; ok {
			return
		}
		for k, v := range *old {
			next[k] = v
		}
	}
	// seg points into the request's token; a clone avoids pinning it.
	next[strings.Clone(seg)] = h
	c.m.Store(&next)
}
