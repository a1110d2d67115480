// Package graphstore stores the crawl graph: nodes and edges per run, with
// one schema and the same SQL on SQLite (pure Go, the embedded default) and
// PostgreSQL. Writes are idempotent upserts, so a redelivered batch changes
// nothing.
package graphstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Node is one graph node of a run.
type Node struct {
	Run, Key, Kind, Title string
}

// Edge is one graph edge of a run.
type Edge struct {
	Run, From, To, Relation string
}

// Store is a SQL graph store.
type Store struct {
	db     *sql.DB
	driver string
}

const schema = `
CREATE TABLE IF NOT EXISTS graph_nodes (
  run   TEXT NOT NULL,
  key   TEXT NOT NULL,
  kind  TEXT NOT NULL,
  title TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run, key)
);
CREATE TABLE IF NOT EXISTS graph_edges (
  run      TEXT NOT NULL,
  src      TEXT NOT NULL,
  dst      TEXT NOT NULL,
  relation TEXT NOT NULL,
  PRIMARY KEY (run, src, dst, relation)
);
`

// Open opens a store from a DSN: sqlite:PATH (or a path ending in .db) for
// SQLite, postgres://... for PostgreSQL. It creates the schema.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var driver, source string
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		driver, source = "pgx", dsn
	case strings.HasPrefix(dsn, "sqlite:"):
		driver, source = "sqlite", sqliteSource(strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasSuffix(dsn, ".db"):
		driver, source = "sqlite", sqliteSource(dsn)
	default:
		return nil, fmt.Errorf("graph store %q: use sqlite:PATH or postgres://USER@HOST/DB", redact(dsn))
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		return nil, fmt.Errorf("opening graph store %s: %w", redact(dsn), err)
	}
	if driver == "sqlite" {
		db.SetMaxOpenConns(1) // one writer; WAL lets readers in
	}
	s := &Store{db: db, driver: driver}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("graph store %s: %w", redact(dsn), err)
	}
	return s, nil
}

func sqliteSource(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
}

// redact hides a password in a DSN.
func redact(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if j := strings.Index(dsn[i+3:], "@"); j >= 0 {
			if k := strings.Index(dsn[i+3:i+3+j], ":"); k >= 0 {
				return dsn[:i+3+k] + ":***" + dsn[i+3+j:]
			}
		}
	}
	return dsn
}

func (s *Store) migrate(ctx context.Context) error {
	for _, stmt := range strings.Split(schema, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("creating schema: %w", err)
		}
	}
	return nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks the store answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// rowsPerStatement bounds a multi-row INSERT (PostgreSQL allows 65535
// parameters, SQLite 32766).
const rowsPerStatement = 500

// Written is what an Upsert added.
type Written struct{ Nodes, Edges int64 }

// Upsert writes nodes and edges in one transaction. Nodes keep the first
// non-empty title; edges already present are left alone. It returns how
// many rows were new.
func (s *Store) Upsert(ctx context.Context, nodes []Node, edges []Edge) (Written, error) {
	nodes, edges = dedupe(nodes, edges)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Written{}, fmt.Errorf("graph store: %w", err)
	}
	defer tx.Rollback()
	var w Written
	for chunk := range chunks(len(nodes)) {
		args := make([]any, 0, 4*len(chunk))
		for _, i := range chunk {
			n := nodes[i]
			args = append(args, n.Run, n.Key, n.Kind, n.Title)
		}
		q := "INSERT INTO graph_nodes (run, key, kind, title) VALUES " + placeholders(len(chunk), 4) +
			" ON CONFLICT (run, key) DO UPDATE SET title = excluded.title, kind = excluded.kind" +
			" WHERE graph_nodes.title = '' AND excluded.title <> ''"
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return Written{}, fmt.Errorf("graph store: writing nodes: %w", err)
		}
		n, _ := res.RowsAffected()
		w.Nodes += n
	}
	for chunk := range chunks(len(edges)) {
		args := make([]any, 0, 4*len(chunk))
		for _, i := range chunk {
			e := edges[i]
			args = append(args, e.Run, e.From, e.To, e.Relation)
		}
		q := "INSERT INTO graph_edges (run, src, dst, relation) VALUES " + placeholders(len(chunk), 4) +
			" ON CONFLICT (run, src, dst, relation) DO NOTHING"
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return Written{}, fmt.Errorf("graph store: writing edges: %w", err)
		}
		n, _ := res.RowsAffected()
		w.Edges += n
	}
	if err := tx.Commit(); err != nil {
		return Written{}, fmt.Errorf("graph store: commit: %w", err)
	}
	return w, nil
}

// dedupe drops repeats within one batch (PostgreSQL refuses to upsert a row
// twice in one statement).
func dedupe(nodes []Node, edges []Edge) ([]Node, []Edge) {
	type nk struct{ run, key string }
	seenN := make(map[nk]int, len(nodes))
	outN := nodes[:0:0]
	for _, n := range nodes {
		if i, ok := seenN[nk{n.Run, n.Key}]; ok {
			if outN[i].Title == "" {
				outN[i] = n
			}
			continue
		}
		seenN[nk{n.Run, n.Key}] = len(outN)
		outN = append(outN, n)
	}
	seenE := make(map[Edge]bool, len(edges))
	outE := edges[:0:0]
	for _, e := range edges {
		if !seenE[e] {
			seenE[e] = true
			outE = append(outE, e)
		}
	}
	return outN, outE
}

// chunks yields index ranges of at most rowsPerStatement.
func chunks(n int) func(yield func([]int) bool) {
	return func(yield func([]int) bool) {
		for start := 0; start < n; start += rowsPerStatement {
			end := min(n, start+rowsPerStatement)
			idx := make([]int, 0, end-start)
			for i := start; i < end; i++ {
				idx = append(idx, i)
			}
			if !yield(idx) {
				return
			}
		}
	}
}

// placeholders is "($1,$2,$3,$4),($5,...)": numbered parameters, which
// PostgreSQL and SQLite both read.
func placeholders(rows, cols int) string {
	var b strings.Builder
	p := 1
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "$%d", p)
			p++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Counts returns a run's node and edge rows.
func (s *Store) Counts(ctx context.Context, run string) (nodes, edges int64, err error) {
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM graph_nodes WHERE run = $1", run).Scan(&nodes); err != nil {
		return 0, 0, fmt.Errorf("graph store: counting nodes: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM graph_edges WHERE run = $1", run).Scan(&edges); err != nil {
		return 0, 0, fmt.Errorf("graph store: counting edges: %w", err)
	}
	return nodes, edges, nil
}

// EdgesByRelation counts a run's edges per relation.
func (s *Store) EdgesByRelation(ctx context.Context, run string) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT relation, count(*) FROM graph_edges WHERE run = $1 GROUP BY relation", run)
	if err != nil {
		return nil, fmt.Errorf("graph store: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var rel string
		var n int64
		if err := rows.Scan(&rel, &n); err != nil {
			return nil, err
		}
		out[rel] = n
	}
	return out, errors.Join(rows.Err(), rows.Close())
}
