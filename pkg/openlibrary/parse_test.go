package openlibrary

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/crawlctl/crawlctl/pkg/crawl"
)

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		fixture, path string
		node          crawl.Node
		nodes         int
		edges         []Edge
		links         []string
	}{
		{
			fixture: "work_OL17732W.json", path: "/works/OL17732W.json",
			node: crawl.Node{Key: "/works/OL17732W", Kind: crawl.KindWork, Title: "Hamlet"},
			edges: []Edge{
				{"/works/OL17732W", "/authors/OL9388A", crawl.WorkAuthor},
				{"/works/OL17732W", "/subjects/tragedies_drama", crawl.WorkSubject},
				{"/works/OL17732W", "/subjects/princes__drama", crawl.WorkSubject},
				{"/works/OL17732W", "/subjects/kings_and_rulers", crawl.WorkSubject},
			},
			links: []string{"/authors/OL9388A.json", "/subjects/tragedies_drama.json", "/subjects/princes__drama.json", "/subjects/kings_and_rulers.json", "/works/OL17732W/editions.json"},
		},
		{
			fixture: "editions_OL17732W.json", path: "/works/OL17732W/editions.json",
			node: crawl.Node{Key: "/works/OL17732W", Kind: crawl.KindWork}, nodes: 2,
			edges: []Edge{
				{"/books/OL7353617M", "/works/OL17732W", crawl.BookWork},
				{"/books/OL7353617M", "/authors/OL9388A", crawl.BookAuthor},
				{"/books/OL7353617M", "/subjects/drama", crawl.BookSubject},
				{"/books/OL1M", "/works/OL17732W", crawl.BookWork},
				{"/books/OL1M", "/authors/OL9388A", crawl.BookAuthor},
			},
		},
		{
			fixture: "edition_OL7353617M.json", path: "/books/OL7353617M.json",
			node: crawl.Node{Key: "/books/OL7353617M", Kind: crawl.KindEdition, Title: "Hamlet"},
			edges: []Edge{
				{"/books/OL7353617M", "/works/OL17732W", crawl.BookWork},
				{"/books/OL7353617M", "/authors/OL9388A", crawl.BookAuthor},
				{"/books/OL7353617M", "/subjects/english_drama", crawl.BookSubject},
			},
			links: []string{"/works/OL17732W.json"},
		},
		{
			fixture: "author_OL9388A.json", path: "/authors/OL9388A.json",
			node:  crawl.Node{Key: "/authors/OL9388A", Kind: crawl.KindAuthor, Title: "William Shakespeare"},
			links: []string{"/authors/OL9388A/works.json"},
		},
		{
			// Authors produce edges: the reference crawler's gap.
			fixture: "authorworks_OL9388A.json", path: "/authors/OL9388A/works.json",
			node: crawl.Node{Key: "/authors/OL9388A", Kind: crawl.KindAuthor},
			edges: []Edge{
				{"/authors/OL9388A", "/works/OL17732W", crawl.AuthorWork},
				{"/authors/OL9388A", "/works/OL362427W", crawl.AuthorWork},
			},
			links: []string{"/works/OL17732W.json", "/works/OL362427W.json"},
		},
		{
			fixture: "subject_love.json", path: "/subjects/love.json",
			node: crawl.Node{Key: "/subjects/love", Kind: crawl.KindSubject, Title: "love"},
			edges: []Edge{
				{"/works/OL66554W", "/subjects/love", crawl.WorkSubject},
				{"/works/OL17732W", "/subjects/love", crawl.WorkSubject},
			},
			links: []string{"/works/OL66554W.json", "/works/OL17732W.json"},
		},
		{
			fixture: "search_tolkien.json", path: "/search.json?fields=key%2Ctitle%2Cauthor_key&limit=20&q=tolkien",
			node: crawl.Node{Key: "search:tolkien", Kind: crawl.KindSearch, Title: "tolkien"},
			edges: []Edge{
				{"search:tolkien", "/works/OL27448W", crawl.SearchWork},
				{"search:tolkien", "/works/OL262758W", crawl.SearchWork},
			},
			links: []string{"/works/OL27448W.json", "/works/OL262758W.json"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			p, err := Parse(mustURL(t, tt.path), f)
			if err != nil {
				t.Fatal(err)
			}
			if p.Node != tt.node {
				t.Errorf("node %+v, want %+v", p.Node, tt.node)
			}
			if len(p.Nodes) != tt.nodes {
				t.Errorf("%d further nodes, want %d", len(p.Nodes), tt.nodes)
			}
			if !slices.Equal(p.Edges, tt.edges) {
				t.Errorf("edges\n %v\nwant\n %v", p.Edges, tt.edges)
			}
			if !slices.Equal(p.Links, tt.links) {
				t.Errorf("links\n %v\nwant\n %v", p.Links, tt.links)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ path, body string }{
		{"/works/OL1W.json", `{"title": 5}`},
		{"/works/OL1W.json", `<html>`},
		{"/works/OL1W.json", ``},
		{"/authors/OL1A/works.json", `{"entries": {"a": 1}}`},
		{"/search.json", `{"docs": "x"}`},
		{"/people/x.json", `{}`},
	}
	for _, tt := range tests {
		_, err := Parse(mustURL(t, tt.path), strings.NewReader(tt.body))
		if !errors.Is(err, ErrParse) {
			t.Errorf("%s %q: error %v, want ErrParse", tt.path, tt.body, err)
		}
	}
}

var (
	nodeKeyRe = regexp.MustCompile(`^(/works/OL[0-9]+W|/authors/OL[0-9]+A|/books/OL[0-9]+M|/subjects/[a-z0-9_\-]+|search:.*)$`)
	linkRe    = regexp.MustCompile(`^/(works/OL[0-9]+W(/editions)?|authors/OL[0-9]+A(/works)?|subjects/[a-z0-9_\-]+)\.json$`)
)

// FuzzParse feeds arbitrary bodies to every endpoint: the parser never
// panics, and whatever it returns is well formed, so a hostile or broken
// body cannot steer the crawl off its target or past its fan-out cap.
func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	paths := []string{"/works/OL17732W.json", "/works/OL17732W/editions.json", "/books/OL7353617M.json",
		"/authors/OL9388A.json", "/authors/OL9388A/works.json", "/subjects/love.json", "/search.json?q=x"}
	for i, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			b, err := os.ReadFile(filepath.Join("testdata", e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), b)
		}
	}
	f.Add(uint8(0), []byte(`{"authors":[{"author":{"key":"/authors/../../etc"}}],"subjects":["../x","http://evil/"]}`))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		u := mustURL(t, paths[int(which)%len(paths)])
		p, err := Parse(u, strings.NewReader(string(body)))
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error %v is not ErrParse", err)
			}
			return
		}
		if !nodeKeyRe.MatchString(p.Node.Key) {
			t.Fatalf("page node key %q", p.Node.Key)
		}
		if len(p.Edges) > maxFanout || len(p.Links) > maxFanout {
			t.Fatalf("fan-out %d edges, %d links", len(p.Edges), len(p.Links))
		}
		for _, e := range p.Edges {
			if !nodeKeyRe.MatchString(e.From) || !nodeKeyRe.MatchString(e.To) || !slices.Contains(crawl.Relations, e.Relation) {
				t.Fatalf("malformed edge %+v", e)
			}
		}
		for _, l := range p.Links {
			if !linkRe.MatchString(l) {
				t.Fatalf("malformed link %q", l)
			}
		}
	})
}
