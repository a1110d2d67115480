package main

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/crawlctl/crawlctl/pkg/runtime/broker"
)

func newRunBrokerCommand(a *app) *cobra.Command {
	o := broker.DefaultOptions()
	cmd := runtimeCommand(a, "broker", "Kafka-protocol broker in memory (kfake): a stand-in for Kafka where apache/kafka cannot run",
		func(ctx context.Context, log *slog.Logger) error {
			o.Log = log
			return broker.Run(ctx, o)
		})
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", o.Listen, "listen address")
	f.StringVar(&o.Advertise, "advertise", "", "host:port clients are told to connect to (default: the listen address)")
	return cmd
}
