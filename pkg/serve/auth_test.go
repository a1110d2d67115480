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
		{"longer", "s3cret", "/", "Bearer s3cretX", false},
		{"scheme in lower case", "s3cret", "/", "bearer s3cret", true},
		{"scheme in upper case", "s3cret", "/", "BEARER s3cret", true},
		{"bare token, no scheme", "s3cret", "/", "s3cret", false},
		{"basic", "s3cret", "/", "Basic czNjcmV0", false},
		{"basic with the token", "s3cret", "/", "Basic s3cret", false},
		{"bearer without credential", "s3cret", "/", "Bearer ", false},
		{"two spaces", "s3cret", "/", "Bearer  s3cret", false},
		{"two credentials", "s3cret", "/", "Bearer s3cret s3cret", false},
		{"tab", "s3cret", "/", "Bearer\ts3cret", false},
		{"empty query token", "s3cret", "/?token=", "", false},
		{"query twice", "s3cret", "/?token=s3cret&token=nope", "", false},
		{"bad header, good query", "s3cret", "/?token=s3cret", "Basic czNjcmV0", true},
		{"wrong bearer, good query", "s3cret", "/?token=s3cret", "Bearer nope", true},
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
