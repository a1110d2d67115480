package openlibrary

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"

	"github.com/crawlctl/crawlctl/pkg/crawl"
)

// Page is what one fetched URL contributes to the graph.
type Page struct {
	Node  crawl.Node   // the page's own node
	Nodes []crawl.Node // further nodes the page describes in full (editions of a listing)
	Edges []Edge
	Links []string // target paths to crawl next (with .json and query)
}

// Edge is a relation between two node keys.
type Edge struct{ From, To, Relation string }

// Endpoint kinds, by path.
const (
	EndpointWork        = "work"
	EndpointEditions    = "editions"
	EndpointEdition     = "edition"
	EndpointAuthor      = "author"
	EndpointAuthorWorks = "author_works"
	EndpointSubject     = "subject"
	EndpointSearch      = "search"
)

var endpointRes = []struct {
	kind string
	re   *regexp.Regexp
}{
	{EndpointWork, regexp.MustCompile(`^/works/(OL[0-9]+W)\.json$`)},
	{EndpointEditions, regexp.MustCompile(`^/works/(OL[0-9]+W)/editions\.json$`)},
	{EndpointEdition, regexp.MustCompile(`^/books/(OL[0-9]+M)\.json$`)},
	{EndpointAuthor, regexp.MustCompile(`^/authors/(OL[0-9]+A)\.json$`)},
	{EndpointAuthorWorks, regexp.MustCompile(`^/authors/(OL[0-9]+A)/works\.json$`)},
	{EndpointSubject, regexp.MustCompile(`^/subjects/([^/]+)\.json$`)},
	{EndpointSearch, regexp.MustCompile(`^/search\.json$`)},
}

// Endpoint classifies a URL path; ok is false for paths the crawler does not
// parse.
func Endpoint(path string) (kind, id string, ok bool) {
	for _, e := range endpointRes {
		if m := e.re.FindStringSubmatch(path); m != nil {
			if len(m) > 1 {
				id = m[1]
			}
			return e.kind, id, true
		}
	}
	return "", "", false
}

var (
	workKeyRe    = regexp.MustCompile(`^/works/OL[0-9]+W$`)
	authorKeyRe  = regexp.MustCompile(`^/authors/OL[0-9]+A$`)
	editionKeyRe = regexp.MustCompile(`^/books/OL[0-9]+M$`)
)

// ErrParse marks a body that is not the JSON its endpoint returns.
var ErrParse = errors.New("unexpected response body")

type keyRef struct {
	Key string `json:"key"`
}

type authorRole struct {
	Author keyRef `json:"author"`
}

type workDoc struct {
	Key      string       `json:"key"`
	Title    string       `json:"title"`
	Authors  []authorRole `json:"authors"`
	Subjects []string     `json:"subjects"`
}

type editionDoc struct {
	Key      string   `json:"key"`
	Title    string   `json:"title"`
	Authors  []keyRef `json:"authors"`
	Works    []keyRef `json:"works"`
	Subjects []string `json:"subjects"`
}

type authorDoc struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

type subjectDoc struct {
	Key   string `json:"key"`
	Name  string `json:"name"`
	Works []struct {
		Key     string   `json:"key"`
		Title   string   `json:"title"`
		Authors []keyRef `json:"authors"`
	} `json:"works"`
}

type searchDoc struct {
	Docs []struct {
		Key       string   `json:"key"`
		Title     string   `json:"title"`
		AuthorKey []string `json:"author_key"`
	} `json:"docs"`
}

// maxFanout bounds how many edges and links one page contributes.
const maxFanout = 500

// Parse decodes the body of the target URL u (path and query) straight from
// r, without buffering it whole.
func Parse(u *url.URL, r io.Reader) (*Page, error) {
	kind, id, ok := Endpoint(u.Path)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not an endpoint the crawler reads", ErrParse, u.Path)
	}
	dec := json.NewDecoder(r)
	decode := func(v any) error {
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrParse, u.Path, err)
		}
		return nil
	}
	p := &Page{}
	switch kind {
	case EndpointWork:
		var w workDoc
		if err := decode(&w); err != nil {
			return nil, err
		}
		key := "/works/" + id
		p.Node = crawl.Node{Key: key, Kind: crawl.KindWork, Title: w.Title}
		p.addWork(key, w.Authors, w.Subjects)
		p.link(key + "/editions.json")
	case EndpointEditions:
		var l struct {
			Entries []editionDoc `json:"entries"`
		}
		if err := decode(&l); err != nil {
			return nil, err
		}
		p.Node = crawl.Node{Key: "/works/" + id, Kind: crawl.KindWork}
		for _, e := range l.Entries {
			if editionKeyRe.MatchString(e.Key) {
				p.Nodes = append(p.Nodes, crawl.Node{Key: e.Key, Kind: crawl.KindEdition, Title: e.Title})
				p.addEdition(e)
			}
		}
	case EndpointAuthorWorks:
		var l struct {
			Entries []workDoc `json:"entries"`
		}
		if err := decode(&l); err != nil {
			return nil, err
		}
		key := "/authors/" + id
		p.Node = crawl.Node{Key: key, Kind: crawl.KindAuthor}
		for _, w := range l.Entries {
			if workKeyRe.MatchString(w.Key) {
				p.edge(key, w.Key, crawl.AuthorWork)
				p.link(w.Key + ".json")
			}
		}
	case EndpointEdition:
		var e editionDoc
		if err := decode(&e); err != nil {
			return nil, err
		}
		e.Key = "/books/" + id
		p.Node = crawl.Node{Key: e.Key, Kind: crawl.KindEdition, Title: e.Title}
		p.addEdition(e)
		for _, w := range e.Works {
			if workKeyRe.MatchString(w.Key) {
				p.link(w.Key + ".json")
			}
		}
	case EndpointAuthor:
		var a authorDoc
		if err := decode(&a); err != nil {
			return nil, err
		}
		key := "/authors/" + id
		p.Node = crawl.Node{Key: key, Kind: crawl.KindAuthor, Title: a.Name}
		p.link(key + "/works.json")
	case EndpointSubject:
		var s subjectDoc
		if err := decode(&s); err != nil {
			return nil, err
		}
		key := "/subjects/" + id
		p.Node = crawl.Node{Key: key, Kind: crawl.KindSubject, Title: s.Name}
		for _, w := range s.Works {
			if workKeyRe.MatchString(w.Key) {
				p.edge(w.Key, key, crawl.WorkSubject)
				p.link(w.Key + ".json")
			}
		}
	case EndpointSearch:
		var s searchDoc
		if err := decode(&s); err != nil {
			return nil, err
		}
		key := "search:" + u.Query().Get("q")
		p.Node = crawl.Node{Key: key, Kind: crawl.KindSearch, Title: u.Query().Get("q")}
		for _, d := range s.Docs {
			if workKeyRe.MatchString(d.Key) {
				p.edge(key, d.Key, crawl.SearchWork)
				p.link(d.Key + ".json")
			}
		}
	}
	return p, nil
}

func (p *Page) edge(from, to, rel string) {
	if len(p.Edges) < maxFanout {
		p.Edges = append(p.Edges, Edge{From: from, To: to, Relation: rel})
	}
}

func (p *Page) link(path string) {
	if len(p.Links) < maxFanout {
		p.Links = append(p.Links, path)
	}
}

// addWork adds a work's author and subject edges and links.
func (p *Page) addWork(key string, authors []authorRole, subjects []string) {
	for _, a := range authors {
		if authorKeyRe.MatchString(a.Author.Key) {
			p.edge(key, a.Author.Key, crawl.WorkAuthor)
			p.link(a.Author.Key + ".json")
		}
	}
	for _, s := range subjects {
		if sk := SubjectKey(s); sk != "" {
			p.edge(key, sk, crawl.WorkSubject)
			p.link(sk + ".json")
		}
	}
}

// addEdition adds an edition's work, author and subject edges (no links:
// the edition's work and authors are reached through the work).
func (p *Page) addEdition(e editionDoc) {
	for _, w := range e.Works {
		if workKeyRe.MatchString(w.Key) {
			p.edge(e.Key, w.Key, crawl.BookWork)
		}
	}
	for _, a := range e.Authors {
		if authorKeyRe.MatchString(a.Key) {
			p.edge(e.Key, a.Key, crawl.BookAuthor)
		}
	}
	for _, s := range e.Subjects {
		if sk := SubjectKey(s); sk != "" {
			p.edge(e.Key, sk, crawl.BookSubject)
		}
	}
}

// Seeds are the 20 built-in seeds of `crawlctl seed --count N`: 18 authors,
// William Shakespeare first, then two works, as in the reference crawler.
var Seeds = []string{
	"OL9388A", "OL23919A", "OL26320A", "OL2162284A", "OL21594A", "OL24638A",
	"OL18319A", "OL27695A", "OL219525A", "OL31727A", "OL22098A", "OL25712A",
	"OL29303A", "OL31574A", "OL19981A", "OL28127A", "OL20187A", "OL24529A",
	"OL17732W", "OL12129731W",
}
