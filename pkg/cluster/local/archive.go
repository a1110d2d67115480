package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"

	"github.com/crawlctl/crawlctl/pkg/metricstore"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// Archive serves, on a loopback port until close, a copy of the metrics a
// stack that is not up left on disk (after a crash, or a down without
// --purge), and says where its runs were recorded; the stack's directory
// is not changed.
func (p *Provider) Archive(ctx context.Context) (stack.Archive, func(), error) {
	if _, err := ReadState(p.dir); !errors.Is(err, stack.ErrNotUp) {
		if err == nil {
			err = fmt.Errorf("stack %q is up: collect from it", p.name)
		}
		return stack.Archive{}, nil, err
	}
	store, err := metricstore.OpenCopy(filepath.Join(p.dir, tsdbDir), slog.New(slog.DiscardHandler))
	if err != nil {
		return stack.Archive{}, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		store.Close()
		return stack.Archive{}, nil, err
	}
	mux := http.NewServeMux()
	store.Register(mux)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	closeFn := func() {
		srv.Close()
		store.Close()
	}
	return stack.Archive{Prometheus: "http://" + ln.Addr().String(), RunsDir: filepath.Join(p.dir, runsDir)}, closeFn, nil
}
