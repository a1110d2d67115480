// Command crawlctl runs distributed-crawl experiments on a laptop-sized
// cluster: it provisions the cluster, deploys the crawl stack, seeds runs and
// collects metrics, and it is every runtime of that stack (crawlctl run).
package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit status.
func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	root := newRootCommand(out, errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintf(errOut, "crawlctl: error: %v\n", err)
	}
	return exitCode(err)
}

// useFallbackRoots makes Mozilla's CA roots (x509roots' bundle) the roots
// where the host has none: the runtime image is FROM scratch, and a worker
// may crawl the real site over TLS. Only the worker calls it, where
// importing x509roots/fallback would parse the bundle at every process's
// start (1.4 ms and 0.7 MB, GODEBUG=inittrace=1), each hot restart's too.
var useFallbackRoots = sync.OnceFunc(func() {
	p := x509.NewCertPool()
	for c := range bundle.Roots() {
		cert, err := x509.ParseCertificate(c.Certificate)
		if err != nil {
			panic(fmt.Sprintf("x509roots bundle: %v", err))
		}
		if c.Constraint == nil {
			p.AddCert(cert)
		} else {
			p.AddCertWithConstraint(cert, c.Constraint)
		}
	}
	x509.SetFallbackRoots(p)
})
