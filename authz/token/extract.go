package token

import (
	"fmt"
	"net/url"
	"strings"
)

// Strip tells the caller what to remove from a request before it goes
// upstream, so that a token accepted from a WebSocket side channel does not
// reach the backend, its logs or its access logs. The zero value means
// nothing to strip (the token came from Authorization).
type Strip struct {
	// Query: remove every access_token parameter from :path; StripQueryToken
	// does it with the same parsing FromHeaders used.
	Query bool
	// RemoveWebSocketProtocol: delete Sec-WebSocket-Protocol; the token was
	// the only thing the client offered in it.
	RemoveWebSocketProtocol bool
	// WebSocketProtocol, when non-empty, is the value to set
	// Sec-WebSocket-Protocol to: the client's offer without the token.
	WebSocketProtocol string
}

const (
	// Pair form: the element after this marker is the token. When the pair
	// was the whole offer, the marker alone is forwarded so the upstream can
	// select it: browsers fail the handshake when they offered subprotocols
	// and the server selects none.
	wsTokenMarker = "access_token"
	// Prefix form: one element "bearer.<token>". The client must offer a
	// real subprotocol beside it for the upstream to select.
	wsBearerPrefix = "bearer."
	queryTokenKey  = "access_token"
)

// FromHeaders finds the bearer token in Envoy's CheckRequest header map
// (lower-case keys, repeated headers joined with ","). path is Envoy's :path,
// query string included.
//
// Authorization: Bearer <token> is always accepted. Only when websocket is
// true (browsers cannot set headers on a WebSocket) are these accepted too:
//
//   - Sec-WebSocket-Protocol: [other, ]access_token, <token>[, other]
//     (pair form: the element after "access_token" is the token)
//   - Sec-WebSocket-Protocol: [other, ]bearer.<token>[, other]
//     (prefix form)
//   - ?access_token=<token> in path
//
// For the subprotocol forms Strip carries the offer without the token. The
// upstream must select one of the remaining subprotocols; when the pair was
// the whole offer, "access_token" is what remains, and what it must select.
//
// More than one source, or more than one token in one source, is
// ErrMalformed: which one would we verify, and which would the upstream see?
func FromHeaders(headers map[string]string, websocket bool, path string) (token string, strip Strip, err error) {
	var sources int
	if v := strings.Trim(headers["authorization"], " \t"); v != "" {
		t, err := parseAuthorization(v)
		if err != nil {
			return "", Strip{}, err
		}
		token = t
		sources++
	}
	if websocket {
		if v, ok := headers["sec-websocket-protocol"]; ok {
			t, rest, found, err := parseWebSocketProtocol(v)
			if err != nil {
				return "", Strip{}, err
			}
			if found {
				token = t
				sources++
				if rest == "" {
					strip.RemoveWebSocketProtocol = true
				} else {
					strip.WebSocketProtocol = rest
				}
			}
		}
		t, found, err := queryToken(path)
		if err != nil {
			return "", Strip{}, err
		}
		if found {
			token = t
			sources++
			strip.Query = true
		}
	}
	switch {
	case sources == 0:
		return "", Strip{}, ErrMissing
	case sources > 1:
		return "", Strip{}, fmt.Errorf("%w: token presented in more than one place", ErrMalformed)
	}
	return token, strip, nil
}

func parseAuthorization(v string) (string, error) {
	// A JWT never contains ',' or a second scheme, so either means Envoy
	// joined two Authorization headers.
	if strings.IndexByte(v, ',') >= 0 {
		return "", fmt.Errorf("%w: duplicate Authorization header", ErrMalformed)
	}
	scheme, rest, ok := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: Authorization scheme is not Bearer", ErrMalformed)
	}
	t := strings.TrimLeft(rest, " ")
	if !ok || t == "" {
		return "", fmt.Errorf("%w: Authorization has no bearer token", ErrMalformed)
	}
	if !isB64Token(t) {
		// Only a value that already failed can hold a second scheme, so the
		// scan for one stays off the common path.
		if countFold(v, "bearer ") > 1 {
			return "", fmt.Errorf("%w: duplicate Authorization header", ErrMalformed)
		}
		return "", fmt.Errorf("%w: Authorization must carry exactly one token", ErrMalformed)
	}
	return t, nil
}

// parseWebSocketProtocol finds a token in a subprotocol offer and returns
// the offer without it.
func parseWebSocketProtocol(v string) (token, rest string, found bool, err error) {
	elems := strings.Split(v, ",")
	keep := elems[:0]
	pair := false
	for i := 0; i < len(elems); i++ {
		e := strings.Trim(elems[i], " \t")
		var t string
		switch {
		case e == "":
			continue
		case e == wsTokenMarker:
			pair = true
			for i+1 < len(elems) && strings.Trim(elems[i+1], " \t") == "" {
				i++
			}
			if i+1 == len(elems) {
				return "", "", false, fmt.Errorf("%w: %s subprotocol without a token", ErrMalformed, wsTokenMarker)
			}
			i++
			t = strings.Trim(elems[i], " \t")
		case strings.HasPrefix(e, wsBearerPrefix):
			t = e[len(wsBearerPrefix):]
		default:
			keep = append(keep, e)
			continue
		}
		if found {
			return "", "", false, fmt.Errorf("%w: more than one token in Sec-WebSocket-Protocol", ErrMalformed)
		}
		if !isB64Token(t) {
			return "", "", false, fmt.Errorf("%w: Sec-WebSocket-Protocol token has invalid characters", ErrMalformed)
		}
		token, found = t, true
	}
	if !found {
		return "", "", false, nil
	}
	if pair && len(keep) == 0 {
		return token, wsTokenMarker, true, nil
	}
	return token, strings.Join(keep, ", "), true, nil
}

// queryToken finds access_token in path's query. Keys are compared after
// percent-decoding so that an encoded key cannot slip a second token past us
// to an upstream that decodes it.
func queryToken(path string) (token string, found bool, err error) {
	_, query, ok := strings.Cut(path, "?")
	if !ok {
		return "", false, nil
	}
	query, _, _ = strings.Cut(query, "#")
	for query != "" {
		var param string
		param, query, _ = strings.Cut(query, "&")
		key, val, _ := strings.Cut(param, "=")
		if !isQueryTokenKey(key) {
			continue
		}
		if found {
			return "", false, fmt.Errorf("%w: more than one access_token query parameter", ErrMalformed)
		}
		t, err := url.QueryUnescape(val)
		if err != nil || !isB64Token(t) {
			return "", false, fmt.Errorf("%w: access_token query parameter is not a token", ErrMalformed)
		}
		token, found = t, true
	}
	return token, found, nil
}

func isQueryTokenKey(key string) bool {
	if key == queryTokenKey {
		return true
	}
	if strings.IndexByte(key, '%') < 0 && strings.IndexByte(key, '+') < 0 {
		return false
	}
	k, err := url.QueryUnescape(key)
	return err == nil && k == queryTokenKey
}

// StripQueryToken returns path without its access_token query parameters,
// leaving every other parameter byte for byte as the client sent it.
func StripQueryToken(path string) string {
	base, query, ok := strings.Cut(path, "?")
	if !ok {
		return path
	}
	query, frag, hasFrag := strings.Cut(query, "#")
	var b strings.Builder
	b.Grow(len(path))
	b.WriteString(base)
	sep := byte('?')
	for query != "" {
		var param string
		param, query, _ = strings.Cut(query, "&")
		key, _, _ := strings.Cut(param, "=")
		if isQueryTokenKey(key) {
			continue
		}
		b.WriteByte(sep)
		b.WriteString(param)
		sep = '&'
	}
	if hasFrag {
		b.WriteByte('#')
		b.WriteString(frag)
	}
	return b.String()
}

// isB64Token reports whether s is an RFC 6750 b64token. Anything else cannot
// be a JWT and may be an attempt at header or log injection.
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && b64TokenChar[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// A table keeps the per-byte check to one load on a token of a few hundred
// bytes that every request carries.
var b64TokenChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

// countFold counts case-insensitive, possibly overlapping occurrences of an
// ASCII needle without allocating.
func countFold(s, needle string) int {
	n := 0
	for i := 0; i+len(needle) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(needle)], needle) {
			n++
		}
	}
	return n
}
