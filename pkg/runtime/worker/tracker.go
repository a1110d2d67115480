package worker

import (
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

type topicPartition struct {
	topic     string
	partition int32
}

// partition is one assigned partition's progress. Records finish out of
// order; the commit point is the lowest unfinished offset, so a commit
// never skips a record that has not finished (at-least-once).
type partition struct {
	pending   map[int64]struct{} // fetched, not finished
	next      int64              // last fetched offset + 1
	epoch     int32              // leader epoch of the last fetched record
	committed int64              // last committed offset, -1 for none
}

// tracker holds the partitions this worker owns. A partition revoked or lost
// is dropped; jobs of a dropped partition that finish later change nothing.
type tracker struct {
	mu    sync.Mutex
	parts map[topicPartition]*partition
}

func newTracker() *tracker { return &tracker{parts: map[topicPartition]*partition{}} }

// add records a fetched record and returns its partition's state.
func (t *tracker) add(r *kgo.Record) *partition {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := topicPartition{r.Topic, r.Partition}
	p, ok := t.parts[k]
	if !ok {
		p = &partition{pending: map[int64]struct{}{}, committed: -1}
		t.parts[k] = p
	}
	p.pending[r.Offset] = struct{}{}
	p.next = max(p.next, r.Offset+1)
	p.epoch = r.LeaderEpoch
	return p
}

// done marks a record finished, if its partition is still ours.
func (t *tracker) done(p *partition, offset int64) {
	t.mu.Lock()
	delete(p.pending, offset)
	t.mu.Unlock()
}

// owns reports whether p is still an assigned partition.
func (t *tracker) owns(r *kgo.Record, p *partition) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.parts[topicPartition{r.Topic, r.Partition}] == p
}

// commitPoint is the offset to commit for p: its lowest unfinished offset,
// or everything fetched when nothing is pending.
func (p *partition) commitPoint() int64 {
	at := p.next
	for o := range p.pending {
		at = min(at, o)
	}
	return at
}

// uncommitted returns the offsets to commit: partitions (all, or only the
// given ones) whose commit point moved.
func (t *tracker) uncommitted(only map[string][]int32) map[string]map[int32]kgo.EpochOffset {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]map[int32]kgo.EpochOffset{}
	for k, p := range t.parts {
		if only != nil && !slices.Contains(only[k.topic], k.partition) {
			continue
		}
		if at := p.commitPoint(); at > p.committed && p.next > 0 {
			if out[k.topic] == nil {
				out[k.topic] = map[int32]kgo.EpochOffset{}
			}
			out[k.topic][k.partition] = kgo.EpochOffset{Epoch: p.epoch, Offset: at}
		}
	}
	return out
}

// committed records a successful commit.
func (t *tracker) committed(offsets map[string]map[int32]kgo.EpochOffset) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range offsets {
		for part, eo := range ps {
			if p, ok := t.parts[topicPartition{topic, part}]; ok {
				p.committed = max(p.committed, eo.Offset)
			}
		}
	}
}

// drop forgets partitions (revoked or lost).
func (t *tracker) drop(parts map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			delete(t.parts, topicPartition{topic, p})
		}
	}
}

// pendingCount is how many fetched records have not finished.
func (t *tracker) pendingCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.parts {
		n += len(p.pending)
	}
	return n
}
