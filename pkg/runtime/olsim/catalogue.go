// Package olsim is the Open Library simulator: a deterministic synthetic
// catalogue served on Open Library's JSON paths with Open Library's field
// names, behind per-client-IP rate limits like Open Library's nginx, with
// optional latency and fault injection. It is crawlctl's default target, for
// offline, reproducible and polite experiments.
package olsim

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/crawlctl/crawlctl/pkg/openlibrary"
)

// Catalogue generates the synthetic catalogue. It is procedural: every
// entity is computed from its id, so any well-formed id resolves and the
// catalogue needs no memory. Relations are invertible where the crawl walks
// them both ways: work OL{m}W belongs to author OL{m/64}A, editions of work
// m are OL{m*8+e}M.
type Catalogue struct {
	Seed uint64
	// MaxWorksPerAuthor: each author has between MaxWorksPerAuthor/2 (at
	// least minWorks) and MaxWorksPerAuthor works (at most worksSlot).
	MaxWorksPerAuthor  int
	Subjects           int // size of the subject pool
	MaxSubjectsPerWork int
	MaxEditionsPerWork int // at most editionSlot
	SubjectWorks       int // works listed on a subject page
	SearchResults      int
}

const (
	worksSlot   = 64 // work ids per author: m = author*64 + j
	editionSlot = 8  // edition ids per work: x = work*8 + e
	minWorks    = 10 // every author has works j < 10, so such ids always resolve
	authorSpace = 1_000_000
)

// DefaultCatalogue is sized so the 20 built-in seeds at depth 3 make a
// crawl of a few thousand URLs.
func DefaultCatalogue() Catalogue {
	return Catalogue{Seed: 1, MaxWorksPerAuthor: 64, Subjects: 500, MaxSubjectsPerWork: 3,
		MaxEditionsPerWork: 4, SubjectWorks: 12, SearchResults: 10}
}

// Validate checks the sizes.
func (c Catalogue) Validate() error {
	switch {
	case c.MaxWorksPerAuthor < minWorks || c.MaxWorksPerAuthor > worksSlot:
		return fmt.Errorf("works per author must be between %d and %d (got %d)", minWorks, worksSlot, c.MaxWorksPerAuthor)
	case c.MaxEditionsPerWork < 1 || c.MaxEditionsPerWork > editionSlot:
		return fmt.Errorf("editions per work must be between 1 and %d (got %d)", editionSlot, c.MaxEditionsPerWork)
	case c.Subjects < 1 || c.MaxSubjectsPerWork < 0 || c.SubjectWorks < 0 || c.SearchResults < 0:
		return fmt.Errorf("subject and search sizes must be positive")
	}
	return nil
}

// h hashes the catalogue seed with parts.
func (c Catalogue) h(parts ...uint64) uint64 {
	f := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], c.Seed)
	f.Write(b[:])
	for _, p := range parts {
		binary.LittleEndian.PutUint64(b[:], p)
		f.Write(b[:])
	}
	return f.Sum64()
}

func (c Catalogue) hs(s string, parts ...uint64) uint64 {
	f := fnv.New64a()
	f.Write([]byte(s))
	return c.h(append(parts, f.Sum64())...)
}

var (
	firstNames = []string{"Ada", "Basil", "Clara", "Dmitri", "Edith", "Felix", "Greta", "Hugo", "Ines", "Jonah", "Kira", "Leon", "Mara", "Niko", "Olive", "Pavel"}
	lastNames  = []string{"Ashdown", "Brenner", "Calloway", "Dunmore", "Everly", "Fairbanks", "Galloway", "Hartwell", "Ingram", "Jessop", "Kestrel", "Lindqvist", "Marlowe", "Northcott", "Oakes", "Pemberton"}
	adjectives = []string{"Silent", "Crimson", "Hidden", "Golden", "Broken", "Distant", "Hollow", "Iron", "Last", "Northern", "Pale", "Quiet", "Restless", "Secret", "Winter", "Wandering"}
	nouns      = []string{"River", "Garden", "Tower", "Harbour", "Letter", "Orchard", "Voyage", "Empire", "Mirror", "Lantern", "Meadow", "Kingdom", "Compass", "Archive", "Island", "Bridge"}
	topics     = []string{"fiction", "history", "poetry", "drama", "romance", "science", "travel", "philosophy", "mystery", "adventure", "biography", "fantasy"}
	qualifiers = []string{"", "english", "french", "juvenile", "classic", "modern", "medieval", "victorian", "american", "russian", "german", "ancient", "colonial"}
)

func pick(list []string, h uint64) string { return list[h%uint64(len(list))] }

// AuthorName is author a's name.
func (c Catalogue) AuthorName(a uint64) string {
	h := c.h(1, a)
	return pick(firstNames, h) + " " + pick(lastNames, h>>16)
}

// WorkCount is how many works author a has.
func (c Catalogue) WorkCount(a uint64) int {
	lo := max(minWorks, c.MaxWorksPerAuthor/2)
	return lo + int(c.h(2, a)%uint64(c.MaxWorksPerAuthor-lo+1))
}

// WorkExists reports whether OL{m}W is in the catalogue.
func (c Catalogue) WorkExists(m uint64) bool {
	return m >= worksSlot && int(m%worksSlot) < c.WorkCount(m/worksSlot)
}

// WorkTitle is work m's title.
func (c Catalogue) WorkTitle(m uint64) string {
	h := c.h(3, m)
	return "The " + pick(adjectives, h) + " " + pick(nouns, h>>16)
}

// WorkSubjects are work m's subject names.
func (c Catalogue) WorkSubjects(m uint64) []string {
	n := int(c.h(4, m) % uint64(c.MaxSubjectsPerWork+1))
	out := make([]string, 0, n)
	for i := range n {
		name := c.SubjectName(int(c.h(5, m, uint64(i)) % uint64(c.Subjects)))
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// SubjectName is the i-th subject of the pool.
func (c Catalogue) SubjectName(i int) string {
	t := topics[i%len(topics)]
	q := qualifiers[(i/len(topics))%len(qualifiers)]
	name := t
	if q != "" {
		name = q + " " + t
	}
	if round := i / (len(topics) * len(qualifiers)); round > 0 {
		name += " " + strconv.Itoa(round+1)
	}
	return name
}

// EditionCount is how many editions work m has.
func (c Catalogue) EditionCount(m uint64) int {
	return 1 + int(c.h(6, m)%uint64(c.MaxEditionsPerWork))
}

// someWork is a work that exists, chosen by h: the first works of any
// author always exist.
func someWork(h uint64) uint64 {
	a := 1 + h%authorSpace
	return a*worksSlot + (h>>32)%minWorks
}

// SubjectSlugs maps every subject of the pool by its URL slug.
func (c Catalogue) SubjectSlugs() map[string]string {
	m := make(map[string]string, c.Subjects)
	for i := range c.Subjects {
		name := c.SubjectName(i)
		m[openlibrary.SubjectKey(name)[len("/subjects/"):]] = name
	}
	return m
}
