// Command crawlctl runs distributed-crawl experiments on a laptop-sized
// cluster: it provisions the cluster, deploys the crawl stack, seeds runs and
// collects metrics, and it is every runtime of that stack (crawlctl run).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	// Mozilla's CA roots, used only where the host has none: the runtime
	// image is FROM scratch, and a worker may crawl the real site over TLS.
	_ "golang.org/x/crypto/x509roots/fallback"
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
