package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/crawlctl/crawlctl/pkg/runtime/proxy"
)

func newRunProxyCommand(a *app) *cobra.Command {
	var (
		egressIP, target string
		allow            []string
		processes, gogc  int
		opts             = proxy.DefaultOptions()
		so               proxy.ServeOptions
	)
	cmd := runtimeCommand(a, "proxy", "Egress proxy: HTTP forward proxy (absolute-form and CONNECT) dialing from one egress address",
		func(ctx context.Context, log *slog.Logger) error {
			if egressIP != "" {
				if opts.EgressIP = net.ParseIP(egressIP); opts.EgressIP == nil {
					return usageErrorf("--egress-ip %q is not an IP address", egressIP)
				}
			}
			opts.Allow = allow
			if len(opts.Allow) == 0 && target != "" {
				u, err := url.Parse(target)
				if err != nil || u.Host == "" {
					return usageErrorf("--target %q is not a URL", target)
				}
				host := u.Host
				if u.Port() == "" {
					host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
				}
				opts.Allow = []string{host}
			}
			if processes < 1 {
				return usageErrorf("--processes must be at least 1 (got %d)", processes)
			}
			if processes > 1 {
				return superviseProxies(ctx, processes, so, log)
			}
			if _, set := os.LookupEnv("GOGC"); !set {
				debug.SetGCPercent(gogc)
			}
			reg := newRegistry()
			opts.Log, opts.Registerer = log, reg
			p, err := proxy.New(opts)
			if err != nil {
				return usageError{err}
			}
			return proxy.Serve(ctx, p, so, reg, log)
		})
	f := cmd.Flags()
	f.StringVar(&so.Listen, "listen", "127.0.0.1:3128", "proxy listen address")
	f.StringVar(&so.AdminListen, "admin-listen", "127.0.0.1:9103", "address of /healthz, /readyz and /metrics")
	f.StringVar(&egressIP, "egress-ip", "", "source address of upstream connections (locally 127.0.0.x, one per proxy)")
	f.StringArrayVar(&allow, "allow", nil, "allowed destination host[:port] or *.domain[:port] (repeat); default: the --target host")
	f.StringVar(&target, "target", defaultTarget, "crawl target; its host:port is the default allow-list")
	f.IntVar(&gogc, "gogc", 400, "Go GC percent (GOGC wins when set): the proxy's heap is small, so fewer collections buy throughput and p99")
	f.IntVar(&processes, "processes", 1, "processes sharing the listen port (SO_REUSEPORT)")
	f.DurationVar(&so.DrainTimeout, "drain-timeout", 30*time.Second, "how long in-flight requests and tunnels may finish on SIGTERM or after a SIGHUP hand-off")
	f.IntVar(&so.MaxHeaderBytes, "max-header-bytes", 32<<10, "largest request header block (larger: 431)")
	f.StringVar(&so.PIDFile, "pid-file", "", "write the serving process's pid here (it changes on SIGHUP)")
	f.BoolVar(&so.Pprof, "pprof", false, "serve /debug/pprof/ on the admin port")
	f.DurationVar(&opts.DialTimeout, "dial-timeout", opts.DialTimeout, "upstream connect timeout")
	f.DurationVar(&opts.ResponseHeaderTimeout, "response-header-timeout", opts.ResponseHeaderTimeout, "upstream response header timeout")
	f.DurationVar(&opts.TunnelIdleTimeout, "tunnel-idle-timeout", opts.TunnelIdleTimeout, "close a CONNECT tunnel idle this long")
	return cmd
}

// superviseProxies runs n proxy processes on one port (SO_REUSEPORT), each
// with its own admin port (the given one + i) and pid file, and forwards
// SIGHUP and SIGTERM to each one's current pid.
func superviseProxies(ctx context.Context, n int, so proxy.ServeOptions, log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "crawlctl-proxy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	adminHost, adminPort, err := net.SplitHostPort(so.AdminListen)
	if err != nil {
		return usageErrorf("--admin-listen %q: %v", so.AdminListen, err)
	}
	base, _ := strconv.Atoi(adminPort)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var pidFiles []string
	for i := range n {
		args := replaceFlags(os.Args[1:], map[string]string{"--processes": "1"})
		pf := filepath.Join(dir, fmt.Sprintf("proxy-%d.pid", i))
		admin := so.AdminListen
		if base != 0 {
			admin = net.JoinHostPort(adminHost, strconv.Itoa(base+i))
		}
		args = replaceFlags(args, map[string]string{"--pid-file": pf, "--admin-listen": admin})
		c := exec.Command(exe, args...)
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			return fmt.Errorf("starting proxy process %d: %w", i, err)
		}
		go c.Wait()
		pidFiles = append(pidFiles, pf)
	}
	log.Info("proxy processes started", "processes", n, "listen", so.Listen)
	send := func(sig syscall.Signal) []int {
		var pids []int
		for _, pf := range pidFiles {
			b, err := os.ReadFile(pf)
			if err != nil {
				continue
			}
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && syscall.Kill(pid, sig) == nil {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			send(syscall.SIGHUP)
		case <-ctx.Done():
			pids := send(syscall.SIGTERM)
			deadline := time.Now().Add(so.DrainTimeout + 5*time.Second)
			for _, pid := range pids {
				for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
			}
			return nil
		}
	}
}

// replaceFlags sets flags in args (--flag value or --flag=value forms),
// appending those not present.
func replaceFlags(args []string, set map[string]string) []string {
	out := make([]string, 0, len(args)+2*len(set))
	done := map[string]bool{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasEq := strings.Cut(a, "=")
		if v, ok := set[name]; ok {
			out = append(out, name+"="+v)
			done[name] = true
			if !hasEq && i+1 < len(args) {
				i++ // skip the separate value
			}
			continue
		}
		out = append(out, a)
	}
	for name, v := range set {
		if !done[name] {
			out = append(out, name+"="+v)
		}
	}
	return out
}
