package token

import (
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// SignHS256 mints an HS256 token over claims c, for `gatewayctl token` and
// tests. It sets no claims of its own: the caller decides exp, iss and the
// rest, so a dev token looks exactly like the one it imitates.
func SignHS256(secret []byte, c map[string]any) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("sign HS256: empty secret")
	}
	if c == nil {
		// A nil map marshals to "null", which Verify rightly refuses.
		c = map[string]any{}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(c)).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign HS256: %w", err)
	}
	return s, nil
}
