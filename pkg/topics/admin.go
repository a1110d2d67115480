package topics

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Retry carries jobs scheduled for a later attempt (429, 5xx, timeouts):
// handing them off keeps the frontier partition they came from flowing.
const Retry = "crawl.retry"

// Consumer groups.
const (
	WorkerGroup      = "crawl-workers"
	GraphWriterGroup = "crawl-graph-writers"
)

// Spec is one topic and its partition count.
type Spec struct {
	Name       string
	Partitions int32
}

// Specs are the crawl's topics for a frontier of the given partition count.
// Retries share the frontier's partitioning (one URL, one partition); the
// graph writer's inputs have room for several writers.
func Specs(frontierPartitions int) []Spec {
	p := int32(frontierPartitions)
	return []Spec{
		{Frontier, p},
		{Retry, p},
		{Results, 8},
		{Edges, 8},
		{DLQ, 1},
	}
}

// Ensure creates the crawl's topics, explicitly partitioned (never relying on
// auto-create), and grows a topic that has fewer partitions than asked. It
// is idempotent.
func Ensure(ctx context.Context, cl *kgo.Client, frontierPartitions int) error {
	if frontierPartitions < 1 {
		return fmt.Errorf("frontier partitions must be at least 1 (got %d)", frontierPartitions)
	}
	specs := Specs(frontierPartitions)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	// kadm answers from kgo's metadata cache for up to MetadataMinAge:
	// drop it so what we list is what the broker has, now and afterwards.
	cl.PurgeTopicsFromClient(names...)
	defer cl.PurgeTopicsFromClient(names...)
	adm := kadm.NewClient(cl)
	existing, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("listing Kafka topics: %w", err)
	}
	for _, s := range specs {
		if d, ok := existing[s.Name]; ok && d.Err == nil {
			if have := int32(len(d.Partitions)); have < s.Partitions {
				resp, err := adm.CreatePartitions(ctx, int(s.Partitions-have), s.Name)
				if err == nil {
					err = resp.Error()
				}
				if err != nil {
					return fmt.Errorf("growing topic %s from %d to %d partitions: %w", s.Name, have, s.Partitions, err)
				}
			}
			continue
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, 1, nil, s.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s with %d partitions: %w", s.Name, s.Partitions, err)
		}
	}
	return nil
}

// PartitionLag is one partition's position for a consumer group.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	End       int64  `json:"end"`
	Committed int64  `json:"committed"` // -1: the group never committed here
	Lag       int64  `json:"lag"`
}

// Lag is group's lag on each partition of topics: end offset minus the
// committed offset, or minus the start offset where the group has not
// committed yet (so a fresh frontier shows its full backlog).
func Lag(ctx context.Context, adm *kadm.Client, group string, topicNames ...string) ([]PartitionLag, error) {
	ends, err := adm.ListEndOffsets(ctx, topicNames...)
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %v: %w", topicNames, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topicNames...)
	if err != nil {
		return nil, fmt.Errorf("listing start offsets of %v: %w", topicNames, err)
	}
	commits, err := adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("fetching offsets of group %s: %w", group, err)
	}
	var out []PartitionLag
	var loadErr error
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			loadErr = e.Err
			return
		}
		l := PartitionLag{Topic: e.Topic, Partition: e.Partition, End: e.Offset, Committed: -1}
		from := int64(0)
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Err == nil {
			from = s.Offset
		}
		if c, ok := commits.Lookup(e.Topic, e.Partition); ok && c.Err == nil && c.At >= 0 {
			l.Committed = c.At
			from = max(from, c.At)
		}
		l.Lag = max(0, e.Offset-from)
		out = append(out, l)
	})
	if loadErr != nil && len(out) == 0 {
		return nil, fmt.Errorf("listing offsets: %w", loadErr)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}
