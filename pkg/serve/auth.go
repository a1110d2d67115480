package serve

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// Authorized reports whether r carries token: as `Authorization: Bearer
// <token>` (the scheme in any case, as RFC 7235 has it, then exactly one
// credential) or, for clients that cannot set headers, as ?token=. Any
// other Authorization (Basic, a bare token) carries none. An empty token
// admits everyone.
func Authorized(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	bearer, ok := bearerCredential(r.Header.Get("Authorization"))
	if ok && equal(bearer, token) {
		return true
	}
	q, ok := r.URL.Query()["token"]
	return ok && len(q) == 1 && equal(q[0], token)
}

// bearerCredential is the credential of a Bearer Authorization header.
func bearerCredential(h string) (string, bool) {
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" || strings.ContainsAny(cred, " \t") {
		return "", false
	}
	return cred, true
}

// equal compares in constant time, the length included (both sides are
// hashed first).
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
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
