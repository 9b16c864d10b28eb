package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
)

// hs256Key verifies HS256 signatures with one secret. HS256 is the
// platform's main path, and building an HMAC per request (two SHA-256
// states plus pads) was a third of Verify's allocations, so keyed HMAC
// states are pooled per secret.
type hs256Key struct {
	pool sync.Pool
}

func newHS256Key(secret []byte) *hs256Key {
	k := &hs256Key{}
	// secret is the Verifier's private copy, so pooled states built later
	// cannot pick up a caller's mutation.
	k.pool.New = func() any { return hmac.New(sha256.New, secret) }
	return k
}

// verify reports whether sig is the HS256 MAC of input. scratch must have
// room for a SHA-256 sum; passing it in keeps the sum off the heap.
func (k *hs256Key) verify(input, sig, scratch []byte) bool {
	h := k.pool.Get().(hash.Hash)
	h.Reset()
	h.Write(input)
	sum := h.Sum(scratch[:0])
	k.pool.Put(h)
	return hmac.Equal(sig, sum)
}
