package token

import (
	"errors"
	"testing"
)

const jwtA = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"

func TestFromHeaders(t *testing.T) {
	tests := []struct {
		name      string
		headers   map[string]string
		websocket bool
		path      string
		want      string
		strip     Strip
		err       error
	}{
		{name: "bearer", headers: map[string]string{"authorization": "Bearer " + jwtA}, want: jwtA},
		{name: "scheme case-insensitive", headers: map[string]string{"authorization": "bEaReR " + jwtA}, want: jwtA},
		{name: "several spaces", headers: map[string]string{"authorization": "Bearer   " + jwtA + " "}, want: jwtA},
		{name: "nothing", headers: map[string]string{"host": "x"}, err: ErrMissing},
		{name: "nil map", err: ErrMissing},
		{name: "empty authorization", headers: map[string]string{"authorization": "  "}, err: ErrMissing},
		{name: "basic scheme", headers: map[string]string{"authorization": "Basic dXNlcjpwYXNz"}, err: ErrMalformed},
		{name: "bearer without token", headers: map[string]string{"authorization": "Bearer"}, err: ErrMalformed},
		{name: "bearer and spaces only", headers: map[string]string{"authorization": "Bearer   "}, err: ErrMalformed},
		{name: "two tokens", headers: map[string]string{"authorization": "Bearer a b"}, err: ErrMalformed},
		{name: "no space", headers: map[string]string{"authorization": "Bearer" + jwtA}, err: ErrMalformed},
		{name: "tab separator", headers: map[string]string{"authorization": "Bearer\t" + jwtA}, err: ErrMalformed},
		{name: "control characters", headers: map[string]string{"authorization": "Bearer a\r\nx-admin: 1"}, err: ErrMalformed},
		{name: "duplicate joined by comma", headers: map[string]string{"authorization": "Bearer " + jwtA + ",Bearer " + jwtA}, err: ErrMalformed},
		{name: "duplicate joined by comma-space", headers: map[string]string{"authorization": "Bearer a, Basic b"}, err: ErrMalformed},
		{name: "two bearer occurrences", headers: map[string]string{"authorization": "Bearer a Bearer b"}, err: ErrMalformed},
		{name: "lone comma", headers: map[string]string{"authorization": "Bearer " + jwtA + ","}, err: ErrMalformed},

		{
			name:      "websocket protocol pair form",
			headers:   map[string]string{"sec-websocket-protocol": "access_token, " + jwtA},
			websocket: true, want: jwtA, strip: Strip{WebSocketProtocol: "access_token"},
		},
		{
			name:      "websocket protocol pair form with others",
			headers:   map[string]string{"sec-websocket-protocol": "chat.v2,access_token," + jwtA + ", json"},
			websocket: true, want: jwtA, strip: Strip{WebSocketProtocol: "chat.v2, json"},
		},
		{
			name:      "websocket protocol bearer form alone",
			headers:   map[string]string{"sec-websocket-protocol": "bearer." + jwtA},
			websocket: true, want: jwtA, strip: Strip{RemoveWebSocketProtocol: true},
		},
		{
			name:      "websocket protocol bearer form with others",
			headers:   map[string]string{"sec-websocket-protocol": "graphql-ws, bearer." + jwtA},
			websocket: true, want: jwtA, strip: Strip{WebSocketProtocol: "graphql-ws"},
		},
		{
			name:      "websocket protocol without token is not a source",
			headers:   map[string]string{"sec-websocket-protocol": "graphql-ws", "authorization": "Bearer " + jwtA},
			websocket: true, want: jwtA,
		},
		{
			name:      "websocket protocol marker without token",
			headers:   map[string]string{"sec-websocket-protocol": "chat, access_token"},
			websocket: true, err: ErrMalformed,
		},
		{
			name:      "websocket protocol marker followed by empties",
			headers:   map[string]string{"sec-websocket-protocol": "access_token, ,"},
			websocket: true, err: ErrMalformed,
		},
		{
			name:      "websocket protocol two tokens",
			headers:   map[string]string{"sec-websocket-protocol": "access_token, " + jwtA + ", bearer." + jwtA},
			websocket: true, err: ErrMalformed,
		},
		{
			name:      "websocket protocol empty bearer",
			headers:   map[string]string{"sec-websocket-protocol": "bearer."},
			websocket: true, err: ErrMalformed,
		},
		{
			name:    "websocket protocol ignored on plain requests",
			headers: map[string]string{"sec-websocket-protocol": "access_token, " + jwtA},
			err:     ErrMissing,
		},
		{
			name: "websocket query", websocket: true, path: "/ws/events?room=1&access_token=" + jwtA,
			want: jwtA, strip: Strip{Query: true},
		},
		{
			name: "websocket query percent-encoded", websocket: true, path: "/ws?access_token=" + "eyJhbGciOiJIUzI1NiJ9%2EeyJzdWIiOiJhIn0.c2ln",
			want: jwtA, strip: Strip{Query: true},
		},
		{
			name: "websocket query encoded key", websocket: true, path: "/ws?access%5Ftoken=" + jwtA,
			want: jwtA, strip: Strip{Query: true},
		},
		{
			name: "websocket query twice", websocket: true, path: "/ws?access_token=" + jwtA + "&access%5ftoken=" + jwtA,
			err: ErrMalformed,
		},
		{name: "websocket query empty", websocket: true, path: "/ws?access_token=", err: ErrMalformed},
		{name: "websocket query bad escape", websocket: true, path: "/ws?access_token=%zz", err: ErrMalformed},
		{name: "websocket query other params only", websocket: true, path: "/ws?x_access_token=1&token=2", err: ErrMissing},
		{name: "query ignored on plain requests", path: "/api?access_token=" + jwtA, err: ErrMissing},
		{
			name: "query ignored on plain requests with header", path: "/api?access_token=x",
			headers: map[string]string{"authorization": "Bearer " + jwtA}, want: jwtA,
		},
		{
			name: "header and query", websocket: true, path: "/ws?access_token=" + jwtA,
			headers: map[string]string{"authorization": "Bearer " + jwtA}, err: ErrMalformed,
		},
		{
			name: "header and protocol", websocket: true,
			headers: map[string]string{"authorization": "Bearer " + jwtA, "sec-websocket-protocol": "bearer." + jwtA},
			err:     ErrMalformed,
		},
		{
			name: "protocol and query", websocket: true, path: "/ws?access_token=" + jwtA,
			headers: map[string]string{"sec-websocket-protocol": "bearer." + jwtA}, err: ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, strip, err := FromHeaders(tt.headers, tt.websocket, tt.path)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("FromHeaders error = %v, want %v", err, tt.err)
				}
				if got != "" || strip != (Strip{}) {
					t.Errorf("FromHeaders returned %q, %+v with an error", got, strip)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromHeaders: %v", err)
			}
			if got != tt.want || strip != tt.strip {
				t.Errorf("FromHeaders = %q, %+v; want %q, %+v", got, strip, tt.want, tt.strip)
			}
		})
	}
}

func TestStripQueryToken(t *testing.T) {
	tests := map[string]string{
		"/ws":                                 "/ws",
		"/ws?access_token=x":                  "/ws",
		"/ws?a=1&access_token=x&b=%20":        "/ws?a=1&b=%20",
		"/ws?access_token=x&b=2":              "/ws?b=2",
		"/ws?access%5Ftoken=x&b=2":            "/ws?b=2",
		"/ws?a=1&access_token=x#frag":         "/ws?a=1#frag",
		"/ws?access_token":                    "/ws",
		"/ws?a&&b":                            "/ws?a&&b",
		"/ws?x_access_token=1&access_tokens=": "/ws?x_access_token=1&access_tokens=",
	}
	for in, want := range tests {
		if got := StripQueryToken(in); got != want {
			t.Errorf("StripQueryToken(%q) = %q, want %q", in, got, want)
		}
	}
}
