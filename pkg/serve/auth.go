package serve

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// Authorized reports whether r carries token (Authorization: Bearer, or
// ?token= for clients that cannot set headers); an empty token admits
// everyone.
func Authorized(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if got == "" {
		got = r.URL.Query().Get("token")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// LoopbackOnly reports whether a listen address is reachable from this
// host only (servers off loopback must require a token).
func LoopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
