// Package crawl is the crawl's data model: the versioned messages on the
// topics, their keys, job identity and URL canonicalisation.
package crawl

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// MessageVersion is the "v" field of every message this build writes.
const MessageVersion = 1

// Node kinds.
const (
	KindEdition = "edition"
	KindWork    = "work"
	KindAuthor  = "author"
	KindSubject = "subject"
	KindSearch  = "search"
)

// Edge relations.
const (
	BookAuthor  = "book_author"
	BookWork    = "book_work"
	WorkAuthor  = "work_author"
	AuthorWork  = "author_work"
	BookSubject = "book_subject"
	WorkSubject = "work_subject"
	SearchWork  = "search_work"
)

// Relations lists every edge relation.
var Relations = []string{BookAuthor, BookWork, WorkAuthor, AuthorWork, BookSubject, WorkSubject, SearchWork}

// Job is one URL to crawl, on the frontier (or the retry topic).
type Job struct {
	V  int    `json:"v"`
	ID string `json:"id"` // unique per enqueue; stable across redelivery and retries
	// Run, Seed: the run and the seed this job descends from.
	Run       string    `json:"run"`
	Seed      string    `json:"seed"`
	URL       string    `json:"url"`
	Depth     int       `json:"depth"`
	MaxDepth  int       `json:"max_depth"`
	Attempt   int       `json:"attempt"`
	NotBefore time.Time `json:"not_before,omitzero"`
	CreatedAt time.Time `json:"created_at"`
}

// Result is one fetched node.
type Result struct {
	V    int    `json:"v"`
	Run  string `json:"run"`
	URL  string `json:"url"`
	Kind string `json:"kind"`
	Node Node   `json:"node"`
}

// Node is what the graph stores of a work, edition, author, subject or
// search: its Open Library key and a display name.
type Node struct {
	Key   string `json:"key"` // /works/OL17732W, /authors/OL9388A, /subjects/love, search:q=...
	Kind  string `json:"kind"`
	Title string `json:"title,omitempty"`
}

// Edge is one relation between two node keys.
type Edge struct {
	V        int    `json:"v"`
	Run      string `json:"run"`
	From     string `json:"from"`
	To       string `json:"to"`
	Relation string `json:"relation"`
}

// Failure is a job that went to the DLQ.
type Failure struct {
	V        int       `json:"v"`
	Run      string    `json:"run"`
	JobID    string    `json:"job_id"`
	Seed     string    `json:"seed"`
	URL      string    `json:"url"`
	Depth    int       `json:"depth"`
	Attempt  int       `json:"attempt"`
	Reason   string    `json:"reason"`
	Status   int       `json:"status,omitempty"`
	FailedAt time.Time `json:"failed_at"`
}

// Failure reasons.
const (
	ReasonNotFound     = "not_found"
	ReasonForbidden    = "forbidden"
	ReasonParse        = "parse_error"
	ReasonRateLimited  = "rate_limited"
	ReasonServerError  = "server_error"
	ReasonTimeout      = "timeout"
	ReasonNetwork      = "network_error"
	ReasonClientError  = "client_error"
	ReasonOutsideScope = "outside_target"
	ReasonRobots       = "robots_disallowed"
	ReasonTooLarge     = "body_too_large"
)

// JobID identifies the enqueue of url in run from parent (empty for a seed):
// the same discovery always gets the same ID, so a redelivered parent
// re-enqueues the same jobs rather than new ones.
func JobID(run, parent, url string) string {
	h := sha256.Sum256([]byte(run + "\x00" + parent + "\x00" + url))
	return hex.EncodeToString(h[:12])
}

// Key is the Kafka record key of a job: the canonical URL, so one URL always
// lands on one partition.
func (j Job) Key() []byte { return []byte(j.URL) }

// Decode reads a message and checks its version.
func Decode(b []byte, v any) error {
	var head struct {
		V int `json:"v"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("decoding message: %w", err)
	}
	if head.V != MessageVersion {
		return fmt.Errorf("message version %d is not supported (this build reads v%d)", head.V, MessageVersion)
	}
	return json.Unmarshal(b, v)
}
