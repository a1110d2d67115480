package serve

import (
	"net/http/httptest"
	"testing"
)

func TestAuthorized(t *testing.T) {
	cases := []struct {
		name, token, url, header string
		want                     bool
	}{
		{"no token configured", "", "/", "", true},
		{"bearer", "s3cret", "/", "Bearer s3cret", true},
		{"query", "s3cret", "/?token=s3cret", "", true},
		{"wrong", "s3cret", "/?token=nope", "", false},
		{"missing", "s3cret", "/", "", false},
		{"prefix only", "s3cret", "/", "Bearer s3", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", c.url, nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		if got := Authorized(r, c.token); got != c.want {
			t.Errorf("%s: got %v", c.name, got)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:1": true,
		":8080": false, "0.0.0.0:8080": false, "10.0.0.5:8080": false, "nonsense": false} {
		if got := LoopbackOnly(addr); got != want {
			t.Errorf("%s: got %v, want %v", addr, got, want)
		}
	}
}
