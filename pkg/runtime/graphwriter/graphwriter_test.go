package graphwriter

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/crawlctl/crawlctl/internal/testenv"
	"github.com/crawlctl/crawlctl/pkg/crawl"
	"github.com/crawlctl/crawlctl/pkg/graphstore"
	"github.com/crawlctl/crawlctl/pkg/serve"
	"github.com/crawlctl/crawlctl/pkg/topics"
)

func produceEdges(t *testing.T, cl *kgo.Client, run string, from, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		b, _ := json.Marshal(crawl.Edge{V: crawl.MessageVersion, Run: run, From: fmt.Sprintf("/works/OL%dW", i), To: "/authors/OL1A", Relation: crawl.WorkAuthor})
		recs = append(recs, &kgo.Record{Topic: topics.Edges, Key: []byte(fmt.Sprint(i)), Value: b})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestStoreOutagePausesAndLosesNothing stops PostgreSQL while edges keep
// coming: the writer stops committing, reports not ready, retries the same
// batch, and once the database is back every edge is stored.
func TestStoreOutagePausesAndLosesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pg := testenv.StartPostgres(t)
	store, err := graphstore.Open(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	brokers := testenv.Kafka(t)
	cl := testenv.KafkaClient(t, brokers)
	if err := topics.Ensure(ctx, cl, 2); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	health := &serve.Health{}
	w, err := New(Options{Log: slog.Default(), Brokers: brokers, Store: store, Health: health, Registerer: reg, BatchWait: 50 * time.Millisecond, SessionTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()

	count := func() int64 {
		_, e, err := store.Counts(context.Background(), "r")
		if err != nil {
			return -1
		}
		return e
	}
	produceEdges(t, cl, "r", 0, 300)
	testenv.Eventually(t, time.Minute, "the first 300 edges stored", func() bool { return count() == 300 })

	pg.Stop()
	produceEdges(t, cl, "r", 300, 200)
	testenv.Eventually(t, time.Minute, "the writer to see the outage", func() bool {
		return testutil.ToFloat64(w.m.storeErrors) > 0 && testutil.ToFloat64(w.m.storeUp) == 0
	})
	adm := kadm.NewClient(cl)
	lag, err := topics.Lag(ctx, adm, topics.GraphWriterGroup, topics.Edges)
	if err != nil {
		t.Fatal(err)
	}
	var pending int64
	for _, l := range lag {
		pending += l.Lag
	}
	if pending != 200 {
		t.Errorf("during the outage %d edge records are uncommitted, want the 200 unwritten ones", pending)
	}

	pg.Start()
	testenv.Eventually(t, 2*time.Minute, "all 500 edges stored after the outage", func() bool { return count() == 500 })
	testenv.Eventually(t, time.Minute, "the writer ready again", func() bool { return testutil.ToFloat64(w.m.storeUp) == 1 })
	cancel()
	<-done
}
