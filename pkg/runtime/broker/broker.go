// Package broker is `crawlctl run broker`: a Kafka-protocol broker in
// memory (franz-go's kfake, the one the local provider runs), for a
// cluster that cannot run apache/kafka (this project's tests, where no
// registry is reachable). It is a stand-in: one broker, nothing on disk,
// every record gone when it stops. Users run apache/kafka.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configure the broker.
type Options struct {
	// Listen is the address to listen on.
	Listen string
	// Advertise is the host:port clients are told to connect to (a
	// Service's DNS name in a cluster); empty: the listen address.
	Advertise string
	Log       *slog.Logger
}

// DefaultOptions are the broker's defaults.
func DefaultOptions() Options { return Options{Listen: "127.0.0.1:9092"} }

// Run serves until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Advertise != "" {
		if _, _, err := net.SplitHostPort(o.Advertise); err != nil {
			return fmt.Errorf("--advertise %q: give host:port: %w", o.Advertise, err)
		}
	}
	var bound net.Addr
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(network, _ string) (net.Listener, error) {
		ln, err := net.Listen(network, o.Listen)
		if err != nil {
			return nil, err
		}
		bound = ln.Addr()
		if o.Advertise == "" {
			return ln, nil
		}
		return advertised{ln, o.Advertise}, nil
	}))
	if err != nil {
		return fmt.Errorf("starting the broker on %s: %w", o.Listen, err)
	}
	defer c.Close()
	o.Log.Info("broker started (in memory: a stand-in for Kafka)", "listen", bound.String(), "advertised", c.ListenAddrs())
	<-ctx.Done()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// advertised is a listener whose address is the one clients are told.
type advertised struct {
	net.Listener
	addr string
}

func (l advertised) Addr() net.Addr { return hostPort(l.addr) }

// hostPort is a host:port, as a net.Addr.
type hostPort string

func (h hostPort) Network() string { return "tcp" }
func (h hostPort) String() string  { return string(h) }
