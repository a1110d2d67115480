package topics

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/crawlctl/crawlctl/internal/testenv"
)

func TestEnsureIsIdempotentAndGrows(t *testing.T) {
	ctx := context.Background()
	brokers := testenv.Kafka(t)
	cl := testenv.KafkaClient(t, brokers)
	adm := kadm.NewClient(cl)
	for _, p := range []int{4, 4, 6, 6, 2} { // a smaller count never shrinks
		if err := Ensure(ctx, cl, p); err != nil {
			t.Fatalf("Ensure(%d): %v", p, err)
		}
	}
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Specs(6) {
		if got := len(details[s.Name].Partitions); got != int(s.Partitions) {
			t.Errorf("%s has %d partitions, want %d", s.Name, got, s.Partitions)
		}
	}
	if err := Ensure(ctx, cl, 0); err == nil {
		t.Error("zero partitions accepted")
	}
}

func TestLagCountsBacklogBeforeFirstCommit(t *testing.T) {
	ctx := context.Background()
	brokers := testenv.Kafka(t)
	cl := testenv.KafkaClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	if err := Ensure(ctx, cl, 2); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r := &kgo.Record{Topic: Frontier, Partition: int32(i % 2), Value: []byte("x")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	lag, err := Lag(ctx, adm, WorkerGroup, Frontier)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, l := range lag {
		total += l.Lag
		if l.Committed != -1 {
			t.Errorf("partition %d shows a commit %d", l.Partition, l.Committed)
		}
	}
	if len(lag) != 2 || total != 5 {
		t.Fatalf("lag %+v, want 5 over 2 partitions", lag)
	}
	// Commit 2 of partition 0's 3 records.
	if _, err := adm.CommitOffsets(ctx, WorkerGroup, kadm.OffsetsFromRecords(kgo.Record{Topic: Frontier, Partition: 0, Offset: 1})); err != nil {
		t.Fatal(err)
	}
	lag, _ = Lag(ctx, adm, WorkerGroup, Frontier)
	if lag[0].Committed != 2 || lag[0].Lag != 1 || lag[1].Lag != 2 {
		t.Errorf("after commit: %+v", lag)
	}
}
