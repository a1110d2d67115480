// Package openlibrary knows Open Library's JSON API: which URLs belong to
// the crawl target, how seeds become URLs, and how each endpoint's JSON
// becomes graph nodes, edges and further links.
package openlibrary

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// DefaultTarget is the real site.
const DefaultTarget = "https://openlibrary.org"

// Target is the one site a crawl may fetch from.
type Target struct {
	base *url.URL // scheme and host only
}

// NewTarget parses the target's base URL (scheme and host[:port]).
func NewTarget(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Target{}, fmt.Errorf("target %q is not an http(s) base URL such as %s", raw, DefaultTarget)
	}
	if u.User != nil {
		return Target{}, fmt.Errorf("target %q must not carry credentials", u.Redacted())
	}
	return Target{base: &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}}, nil
}

// String is the base URL.
func (t Target) String() string { return t.base.String() }

// Host is host[:port] of the target.
func (t Target) Host() string { return t.base.Host }

// IsReal reports whether the target is openlibrary.org itself, whose
// published per-client quota applies.
func (t Target) IsReal() bool {
	h := t.base.Hostname()
	return h == "openlibrary.org" || strings.HasSuffix(h, ".openlibrary.org")
}

// URL is the absolute URL of a path (with optional query) on the target.
func (t Target) URL(pathQuery string) string {
	return t.base.String() + pathQuery
}

// Canonical checks that raw is an http(s) URL on the target and returns its
// canonical form: lower-case scheme and host, default port dropped, no
// fragment or credentials, query parameters sorted. A URL anywhere else is
// an error: the crawl never leaves its target.
func (t Target) Canonical(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if !u.IsAbs() {
		return "", fmt.Errorf("%q is not an absolute URL", raw)
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	if h, p, err := net.SplitHostPort(host); err == nil && ((scheme == "http" && p == "80") || (scheme == "https" && p == "443")) {
		host = h
	}
	if scheme != t.base.Scheme || host != t.base.Host || u.User != nil {
		return "", fmt.Errorf("%q is outside the crawl target %s", u.Redacted(), t)
	}
	c := url.URL{Scheme: scheme, Host: host, Path: u.EscapedPath()}
	if c.Path == "" {
		c.Path = "/"
	}
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			vs := q[k]
			sort.Strings(vs)
			for _, v := range vs {
				if b.Len() > 0 {
					b.WriteByte('&')
				}
				b.WriteString(url.QueryEscape(k) + "=" + url.QueryEscape(v))
			}
		}
		c.RawQuery = b.String()
	}
	// Path was escaped already; keep it as is.
	return c.Scheme + "://" + c.Host + c.Path + queryPart(c.RawQuery), nil
}

func queryPart(q string) string {
	if q == "" {
		return ""
	}
	return "?" + q
}

var (
	olidRe    = regexp.MustCompile(`^OL[1-9][0-9]{0,9}[AWM]$`)
	apiPathRe = regexp.MustCompile(`^/(works|authors|books)/OL[1-9][0-9]{0,9}[AWM](/(editions|works))?(\.json)?$|^/subjects/[a-z0-9_%.\-]{1,120}(\.json)?$|^/search\.json$`)
)

// SearchFields and SearchLimit shape every search request: one request,
// only the fields the parser reads.
const (
	SearchFields = "key,title,author_key"
	SearchLimit  = 20
)

// SeedURL turns a seed into a canonical URL on the target. A seed is an
// Open Library id (OL9388A, OL17732W, OL7353617M), a path (/works/OL17732W,
// /subjects/love), a full URL on the target, or otherwise search terms.
func (t Target) SeedURL(seed string) (string, error) {
	s := strings.TrimSpace(seed)
	switch {
	case s == "":
		return "", fmt.Errorf("seed is empty")
	case len(s) > 500:
		return "", fmt.Errorf("seed is longer than 500 characters")
	case olidRe.MatchString(s):
		return t.URL(IDPath(s) + ".json"), nil
	case strings.HasPrefix(s, "/"):
		path, query, _ := strings.Cut(s, "?")
		if !apiPathRe.MatchString(path) {
			return "", fmt.Errorf("seed path %q is not an Open Library works, authors, books, subjects or search path", s)
		}
		if !strings.HasSuffix(path, ".json") {
			path += ".json"
		}
		return t.Canonical(t.URL(path + queryPart(query)))
	case strings.Contains(s, "://"):
		c, err := t.Canonical(s)
		if err != nil {
			return "", err
		}
		u, _ := url.Parse(c)
		if !apiPathRe.MatchString(u.Path) {
			return "", fmt.Errorf("seed URL %q is not an Open Library API URL (works, authors, books, subjects or search)", s)
		}
		return c, nil
	default:
		return t.SearchURL(s), nil
	}
}

// SearchURL is the search request for terms.
func (t Target) SearchURL(terms string) string {
	q := url.Values{"q": {terms}, "fields": {SearchFields}, "limit": {fmt.Sprint(SearchLimit)}}
	return t.URL("/search.json?" + q.Encode()) // Encode sorts keys: canonical
}

// IDPath is the path of an Open Library id: OL9388A → /authors/OL9388A.
func IDPath(id string) string {
	switch id[len(id)-1] {
	case 'A':
		return "/authors/" + id
	case 'W':
		return "/works/" + id
	default:
		return "/books/" + id
	}
}

// SubjectKey is the node key of a subject name: "Fantasy fiction" →
// /subjects/fantasy_fiction.
func SubjectKey(name string) string {
	slug := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		case r == ' ' || r == ',' || r == '/':
			return '_'
		}
		return -1
	}, strings.TrimSpace(name))
	if slug == "" {
		return ""
	}
	if len(slug) > 100 {
		slug = slug[:100]
	}
	return "/subjects/" + slug
}
