package graphstore

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crawlctl/crawlctl/internal/testenv"
)

// stores opens each backend: SQLite in a temp dir and a real PostgreSQL.
func stores(t *testing.T) map[string]*Store {
	t.Helper()
	ctx := context.Background()
	out := map[string]*Store{}
	for name, dsn := range map[string]string{
		"sqlite":   "sqlite:" + filepath.Join(t.TempDir(), "graph.db"),
		"postgres": testenv.Postgres(t),
	} {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { s.Close() })
		out[name] = s
	}
	return out
}

// TestStores runs every store test on SQLite and on one real PostgreSQL.
func TestStores(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name+"/upsert is idempotent", func(t *testing.T) { testUpsertIsIdempotent(t, s) })
		t.Run(name+"/large batch", func(t *testing.T) { testLargeBatchSpansStatements(t, s) })
	}
}

func testUpsertIsIdempotent(t *testing.T, s *Store) {
	ctx := context.Background()
	nodes := []Node{
		{"r1", "/works/OL1W", "work", ""},
		{"r1", "/works/OL1W", "work", "Hamlet"}, // same batch: keeps the title
		{"r1", "/authors/OL1A", "author", "Shakespeare"},
		{"r2", "/works/OL1W", "work", "Other run"},
	}
	edges := []Edge{
		{"r1", "/works/OL1W", "/authors/OL1A", "work_author"},
		{"r1", "/works/OL1W", "/authors/OL1A", "work_author"},
		{"r1", "/authors/OL1A", "/works/OL1W", "author_work"},
		{"r2", "/works/OL1W", "/authors/OL1A", "work_author"},
	}
	w, err := s.Upsert(ctx, nodes, edges)
	if err != nil {
		t.Fatal(err)
	}
	if w.Edges != 3 {
		t.Errorf("first batch wrote %d edges, want 3", w.Edges)
	}
	// The same batch again (a redelivery) adds nothing.
	w, err = s.Upsert(ctx, nodes, edges)
	if err != nil || w.Edges != 0 {
		t.Errorf("redelivered batch wrote %d edges (%v), want 0", w.Edges, err)
	}
	// An empty title never overwrites a known one.
	if _, err := s.Upsert(ctx, []Node{{"r1", "/authors/OL1A", "author", ""}}, nil); err != nil {
		t.Fatal(err)
	}
	n, e, err := s.Counts(ctx, "r1")
	if err != nil || n != 2 || e != 2 {
		t.Errorf("r1 counts %d nodes %d edges (%v), want 2 and 2", n, e, err)
	}
	var title string
	if err := s.db.QueryRowContext(ctx, "SELECT title FROM graph_nodes WHERE run = $1 AND key = $2", "r1", "/authors/OL1A").Scan(&title); err != nil || title != "Shakespeare" {
		t.Errorf("title %q (%v)", title, err)
	}
	byRel, err := s.EdgesByRelation(ctx, "r1")
	if err != nil || byRel["work_author"] != 1 || byRel["author_work"] != 1 {
		t.Errorf("by relation %v (%v)", byRel, err)
	}
}

func testLargeBatchSpansStatements(t *testing.T, s *Store) {
	ctx := context.Background()
	var edges []Edge
	for i := range 2*rowsPerStatement + 7 {
		edges = append(edges, Edge{"big", fmt.Sprintf("/works/OL%dW", i), "/subjects/x", "work_subject"})
	}
	w, err := s.Upsert(ctx, nil, edges)
	if err != nil || w.Edges != int64(len(edges)) {
		t.Fatalf("wrote %d of %d (%v)", w.Edges, len(edges), err)
	}
}

func TestOpenRejectsUnknownDSNAndHidesPasswords(t *testing.T) {
	_, err := Open(context.Background(), "mysql://u:secret@h/db")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v", err)
	}
	if got := redact("postgres://u:secret@h:5432/db"); got != "postgres://u:***@h:5432/db" {
		t.Errorf("redact: %s", got)
	}
}
