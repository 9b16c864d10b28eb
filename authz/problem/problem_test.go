package problem

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestEveryCodeHasAStableShape(t *testing.T) {
	for code, s := range specs {
		t.Run(string(code), func(t *testing.T) {
			p := New(code, "detail", "corr-1")
			var body map[string]any
			if err := json.Unmarshal(p.JSON(), &body); err != nil {
				t.Fatal(err)
			}
			if body["error_code"] != string(code) || int(body["status"].(float64)) != s.status || Status(code) != s.status {
				t.Errorf("body %v", body)
			}
			if !strings.HasPrefix(body["type"].(string), "https://waooaw.com/errors/") || body["title"] == "" ||
				body["correlation_id"] != "corr-1" || body["detail"] != "detail" {
				t.Errorf("body %v", body)
			}
			if s.status != 401 && s.status != 403 && s.status != 404 && s.status != 503 && s.status != 429 && s.status != 504 {
				t.Errorf("unexpected status %d", s.status)
			}
		})
	}
}

func TestUnknownCodeDeniesWith403(t *testing.T) {
	p := New("SOMETHING_NEW", "x", "")
	if p.Status != 403 || Status("SOMETHING_NEW") != 403 {
		t.Fatalf("status %d", p.Status)
	}
}

func TestRetryAfter(t *testing.T) {
	p := New(PolicyUnavailable, "down", "c")
	if p.RetryAfterHeader() != "" {
		t.Error("no retry_after set, but a header value")
	}
	p.RetryAfter = 30
	if p.RetryAfterHeader() != "30" || !strings.Contains(string(p.JSON()), `"retry_after":30`) {
		t.Errorf("retry after: %q %s", p.RetryAfterHeader(), p.JSON())
	}
}
