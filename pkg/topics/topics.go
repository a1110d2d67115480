// Package topics is the one place that names crawlctl's Kafka topics and
// their default partition counts.
package topics

const (
	// Frontier carries crawl jobs; its lag per partition is the headline metric.
	Frontier = "crawl.frontier"
	// Results carries fetched nodes (works, editions, authors, subjects).
	Results = "crawl.results"
	// Edges carries graph edges between nodes.
	Edges = "crawl.edges"
	// DLQ carries jobs that failed for good, with their reason.
	DLQ = "crawl.dlq"
)

// DefaultFrontierPartitions is the frontier's partition count unless the user
// sets --partitions. It bounds useful worker parallelism: a consumer group
// never gives one partition to two workers.
const DefaultFrontierPartitions = 32
