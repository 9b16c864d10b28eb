package policy

import (
	"hash/maphash"
	"sync"
	"time"
)

// DefaultCacheSize bounds the decision cache when a config leaves it zero.
const DefaultCacheSize = 10000

const cacheShards = 16 // a power of two, so the shard is a mask of the hash

// decisionCache maps exact input keys to decisions. It is sharded so that
// concurrent Checks rarely contend, and bounded per shard with random
// eviction: when a shard is full, one arbitrary entry (the first one Go's
// randomised map iteration yields) makes room. Random eviction needs no
// bookkeeping on hits, which keeps hits read-locked; the price is a worse hit
// rate than LRU once the working set exceeds the bound, which a policy input
// space (users x routes) rarely does at 10,000 entries.
//
// A nil *decisionCache is a valid, disabled cache.
type decisionCache struct {
	seed     maphash.Seed
	perShard int
	ttl      time.Duration // zero: entries live until evicted or cleared
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]cacheEntry
	// Pads the shard to 64 bytes so that neighbouring shard locks do not
	// share a cache line.
	_ [32]byte
}

type cacheEntry struct {
	d       *Decision
	expires int64 // unix nanoseconds; zero when the cache has no TTL
}

// newDecisionCache returns nil (disabled) for a negative size.
func newDecisionCache(size int, ttl time.Duration) *decisionCache {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultCacheSize
	}
	c := &decisionCache{
		seed:     maphash.MakeSeed(),
		perShard: max(1, (size+cacheShards-1)/cacheShards),
		ttl:      ttl,
	}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cacheEntry)
	}
	return c
}

func (c *decisionCache) shard(key []byte) *cacheShard {
	return &c.shards[maphash.Bytes(c.seed, key)&(cacheShards-1)]
}

// get never allocates: the string(key) conversion in a map index is elided.
func (c *decisionCache) get(key []byte) (*Decision, bool) {
	if c == nil {
		return nil, false
	}
	s := c.shard(key)
	s.mu.RLock()
	e, ok := s.m[string(key)]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if e.expires != 0 && time.Now().UnixNano() > e.expires {
		return nil, false
	}
	return e.d, true
}

func (c *decisionCache) put(key []byte, d *Decision) {
	if c == nil {
		return
	}
	e := cacheEntry{d: d}
	if c.ttl > 0 {
		e.expires = time.Now().Add(c.ttl).UnixNano()
	}
	k := string(key)
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.m[k]; !exists && len(s.m) >= c.perShard {
		for victim := range s.m {
			delete(s.m, victim)
			break
		}
	}
	s.m[k] = e
}

func (c *decisionCache) len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
