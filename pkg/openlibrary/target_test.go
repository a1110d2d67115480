package openlibrary

import (
	"strings"
	"testing"
)

func TestSeedURL(t *testing.T) {
	tgt, err := NewTarget("http://127.0.0.1:8081")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ seed, want, err string }{
		{seed: "OL9388A", want: "http://127.0.0.1:8081/authors/OL9388A.json"},
		{seed: "OL17732W", want: "http://127.0.0.1:8081/works/OL17732W.json"},
		{seed: " OL7353617M ", want: "http://127.0.0.1:8081/books/OL7353617M.json"},
		{seed: "/works/OL17732W", want: "http://127.0.0.1:8081/works/OL17732W.json"},
		{seed: "/authors/OL9388A/works", want: "http://127.0.0.1:8081/authors/OL9388A/works.json"},
		{seed: "/subjects/love.json", want: "http://127.0.0.1:8081/subjects/love.json"},
		{seed: "http://127.0.0.1:8081/works/OL1W.json#x", want: "http://127.0.0.1:8081/works/OL1W.json"},
		{seed: "HTTP://127.0.0.1:8081/search.json?q=b&limit=2&fields=key", want: "http://127.0.0.1:8081/search.json?fields=key&limit=2&q=b"},
		{seed: "the tempest", want: "http://127.0.0.1:8081/search.json?fields=key%2Ctitle%2Cauthor_key&limit=20&q=the+tempest"},
		{seed: "", err: "seed is empty"},
		{seed: "https://evil.example/works/OL1W.json", err: "outside the crawl target"},
		{seed: "http://127.0.0.1:8082/works/OL1W.json", err: "outside the crawl target"},
		{seed: "http://169.254.169.254/latest/meta-data", err: "outside the crawl target"},
		{seed: "http://user:pw@127.0.0.1:8081/works/OL1W.json", err: "outside the crawl target"},
		{seed: "file:///etc/passwd", err: "outside the crawl target"},
		{seed: "http://127.0.0.1:8081/admin", err: "not an Open Library API URL"},
		{seed: "/etc/passwd", err: "not an Open Library works"},
		{seed: "/works/../admin", err: "not an Open Library works"},
		{seed: strings.Repeat("x", 501), err: "longer than 500"},
	}
	for _, tt := range tests {
		got, err := tgt.SeedURL(tt.seed)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("SeedURL(%q) = %q, %v; want error %q", tt.seed, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("SeedURL(%q) = %q, %v; want %q", tt.seed, got, err, tt.want)
		}
	}
}

func TestCanonicalDropsDefaultPortAndSorts(t *testing.T) {
	tgt, _ := NewTarget("https://openlibrary.org")
	got, err := tgt.Canonical("https://OpenLibrary.org:443/search.json?q=a&fields=x")
	if err != nil || got != "https://openlibrary.org/search.json?fields=x&q=a" {
		t.Errorf("got %q, %v", got, err)
	}
	if !tgt.IsReal() {
		t.Error("openlibrary.org is the real site")
	}
	for _, bad := range []string{"ftp://x", "openlibrary.org", "https://u:p@openlibrary.org", ""} {
		if _, err := NewTarget(bad); err == nil {
			t.Errorf("NewTarget(%q) accepted", bad)
		}
	}
}

func TestSeedsResolve(t *testing.T) {
	tgt, _ := NewTarget(DefaultTarget)
	if len(Seeds) != 20 || Seeds[0] != "OL9388A" {
		t.Fatalf("built-in seeds: %d, first %s", len(Seeds), Seeds[0])
	}
	seen := map[string]bool{}
	for _, s := range Seeds {
		u, err := tgt.SeedURL(s)
		if err != nil || seen[u] {
			t.Errorf("seed %s: %q, %v (duplicate %v)", s, u, err, seen[u])
		}
		seen[u] = true
	}
}
