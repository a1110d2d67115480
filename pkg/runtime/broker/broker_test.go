package broker

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAdvertisedAddress: clients are told the advertised address (a
// Service's name in a cluster), and a record produced through it comes
// back.
func TestAdvertisedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	advertise := net.JoinHostPort("localhost", strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Listen: listen, Advertise: advertise}) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(listen), kgo.ConsumeTopics("t"), kgo.DefaultProduceTopic("t"),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var meta kadm.Metadata
	for { // the broker is up once it answers
		if meta, err = adm.BrokerMetadata(ctx); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the broker stopped: %v", err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if len(meta.Brokers) != 1 || meta.Brokers[0].Host != "localhost" || int(meta.Brokers[0].Port) != port {
		t.Fatalf("brokers %+v, want one at %s", meta.Brokers, advertise)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fs := cl.PollRecords(ctx, 1)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "hello" {
		t.Fatalf("consumed %v", recs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after its context ended: %v", err)
	}
}

func TestBadAdvertise(t *testing.T) {
	if err := Run(context.Background(), Options{Listen: "127.0.0.1:0", Advertise: "no-port"}); err == nil {
		t.Error("an advertised address without a port was accepted")
	}
}
