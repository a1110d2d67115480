// Package proxy is the egress proxy (`crawlctl run proxy`): an HTTP/1.1
// forward proxy (absolute-form requests and CONNECT tunnels) that dials out
// from its own source address, so N proxies are N egress IPs. It is never
// an open proxy: only destinations on its allow-list are reached.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crawlctl/crawlctl/pkg/hotrestart"
)

// Options configure a proxy.
type Options struct {
	// EgressIP is the source address of every upstream connection (nil:
	// the system's choice).
	EgressIP net.IP
	// Allow lists the destinations: host:port, host (ports 80 and 443), or
	// *.domain[:port]. Empty refuses everything.
	Allow                 []string
	DialTimeout           time.Duration
	ResponseHeaderTimeout time.Duration
	TunnelIdleTimeout     time.Duration
	Log                   *slog.Logger
	Registerer            prometheus.Registerer
}

// DefaultOptions are a proxy's defaults, which its flags show; New fills every zero
// timeout from them.
func DefaultOptions() Options {
	return Options{
		DialTimeout:           10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		TunnelIdleTimeout:     2 * time.Minute,
	}
}

// Proxy is the forward proxy handler.
type Proxy struct {
	opts   Options
	allow  []allowRule
	dialer *net.Dialer
	up     *upstreams
	pool   *bufferPool
	m      metrics

	// tunnels are the CONNECT tunnels in flight, which a drain waits for.
	tunnels hotrestart.Sessions
}

type metrics struct {
	bytesUp, bytesDown prometheus.Counter // children of bytes, looked up once
	requests           *requestCounters
	upstream429        prometheus.Counter
	bytes              *prometheus.CounterVec
	tunnels            prometheus.Gauge
	dialErrors         prometheus.Counter
	refused            *prometheus.CounterVec
}

// bufferPool lends 32 KiB copy buffers (responses and tunnels), stored as
// pointers so Put does not allocate.
type bufferPool struct{ p sync.Pool }

const bufSize = 32 << 10

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}}
}

func (b *bufferPool) get() *[]byte  { return b.p.Get().(*[]byte) }
func (b *bufferPool) put(p *[]byte) { b.p.Put(p) }

// New builds a proxy.
func New(opts Options) (*Proxy, error) {
	d := DefaultOptions()
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = d.DialTimeout
	}
	if opts.ResponseHeaderTimeout <= 0 {
		opts.ResponseHeaderTimeout = d.ResponseHeaderTimeout
	}
	if opts.TunnelIdleTimeout <= 0 {
		opts.TunnelIdleTimeout = d.TunnelIdleTimeout
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	rules, err := parseAllow(opts.Allow)
	if err != nil {
		return nil, err
	}
	if len(rules) == 0 {
		return nil, errors.New("proxy: no allowed destination: give --allow or --target (an open proxy is never the default)")
	}
	p := &Proxy{opts: opts, allow: rules}
	p.dialer = &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	if opts.EgressIP != nil {
		p.dialer.LocalAddr = &net.TCPAddr{IP: opts.EgressIP}
	}
	p.m = metrics{
		requests: &requestCounters{m: map[requestKey]prometheus.Counter{}, vec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crawl_proxy_requests_total",
			Help: "Requests by method and the status the proxy answered."}, []string{"method", "code"})},
		upstream429: prometheus.NewCounter(prometheus.CounterOpts{Name: "crawl_proxy_upstream_rate_limited_total",
			Help: "Upstream responses with status 429."}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crawl_proxy_bytes_total",
			Help: "Bytes relayed, by direction (upstream: to the destination, downstream: to the client)."}, []string{"direction"}),
		tunnels: prometheus.NewGauge(prometheus.GaugeOpts{Name: "crawl_proxy_active_tunnels", Help: "Open CONNECT tunnels."}),
		dialErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "crawl_proxy_dial_errors_total",
			Help: "Upstream connections that could not be made."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crawl_proxy_refused_total",
			Help: "Requests refused, by reason."}, []string{"reason"}),
	}
	p.m.bytesUp, p.m.bytesDown = p.m.bytes.WithLabelValues("upstream"), p.m.bytes.WithLabelValues("downstream")
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(p.m.requests.vec, p.m.upstream429, p.m.bytes, p.m.tunnels, p.m.dialErrors, p.m.refused)
	}
	p.pool = newBufferPool()
	p.up = &upstreams{dial: p.dial, maxIdle: 256, idle: map[string][]*upConn{}}
	return p, nil
}

// dial connects upstream from the egress address.
func (p *Proxy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := p.dialer.DialContext(ctx, network, addr)
	if err != nil {
		p.m.dialErrors.Inc()
	}
	return c, err
}

// track relays a tunnel until either side is done or idle too long.
func (p *Proxy) track(client, up net.Conn) {
	done := p.tunnels.Add(client)
	p.m.tunnels.Inc()
	go func() {
		defer done()
		var wg sync.WaitGroup
		wg.Go(func() { p.m.bytesUp.Add(float64(p.pipe(up, client))) })
		wg.Go(func() { p.m.bytesDown.Add(float64(p.pipe(client, up))) })
		wg.Wait()
		client.Close()
		up.Close()
		p.m.tunnels.Dec()
	}()
}

// pipe copies src to dst, extending an idle deadline on every read, and
// half-closes dst at the end. An idle tunnel waits on a small buffer; a
// pooled 32 KiB buffer is taken only while data streams, so a thousand
// quiet tunnels do not hold 64 MiB of buffers.
func (p *Proxy) pipe(dst, src net.Conn) int64 {
	var small [2 << 10]byte
	var total int64
	read := func(b []byte) (int, error) {
		src.SetReadDeadline(time.Now().Add(p.opts.TunnelIdleTimeout))
		n, err := src.Read(b)
		if n > 0 {
			if _, werr := dst.Write(b[:n]); werr != nil {
				return n, werr
			}
			total += int64(n)
		}
		return n, err
	}
	for {
		n, err := read(small[:])
		if err == nil && n == len(small) { // a stream: copy it with a big buffer until it pauses
			buf := p.pool.get()
			for err == nil && n > 0 {
				n, err = read(*buf)
				if n < len(*buf) {
					break
				}
			}
			p.pool.put(buf)
		}
		if err != nil {
			break
		}
	}
	if tc, ok := dst.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	} else {
		dst.Close()
	}
	return total
}

// allowRule is one allowed destination.
type allowRule struct {
	host   string // exact host, or a suffix after "*."
	suffix bool
	port   string // "" means 80 and 443
}

func parseAllow(list []string) ([]allowRule, error) {
	var out []allowRule
	for _, a := range list {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" {
			continue
		}
		r := allowRule{host: a}
		if h, port, err := net.SplitHostPort(a); err == nil {
			if _, perr := strconv.ParseUint(port, 10, 16); perr != nil {
				return nil, fmt.Errorf("--allow %q: port %q is not a number", a, port)
			}
			r.host, r.port = h, port
		}
		if strings.HasPrefix(r.host, "*.") {
			r.host, r.suffix = r.host[1:], true // ".domain"
		}
		if r.host == "" || r.host == "*" || strings.ContainsAny(r.host, "/ ") {
			return nil, fmt.Errorf("--allow %q: give host, host:port or *.domain[:port]; a wildcard for every host would make an open proxy", a)
		}
		out = append(out, r)
	}
	return out, nil
}

// allowed checks a destination; scheme fills in a missing port.
func (p *Proxy) allowed(host, port, scheme string) (bool, string) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	for _, r := range p.allow {
		hostOK := host == r.host || (r.suffix && strings.HasSuffix(host, r.host))
		portOK := port == r.port || (r.port == "" && (port == "80" || port == "443"))
		if hostOK && portOK {
			return true, ""
		}
	}
	return false, fmt.Sprintf("destination %s is not on this proxy's allow-list", net.JoinHostPort(host, port))
}
