//go:build crawlctl_runtime

package cluster

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

func newLocal(string, options) (Provider, error) { return nil, errRuntimeBuild }

func localPID(string) (int, error) { return 0, stack.ErrNotUp }

// RunSupervisor refuses: the runtime build has no local provider.
func RunSupervisor(context.Context, string, time.Duration, *slog.Logger) error {
	return errRuntimeBuild
}

func newCluster(string, options) (Provider, error) { return nil, errRuntimeBuild }

func fromRecord(stack.Record, options) (Provider, error) { return nil, errRuntimeBuild }

func kindFits(context.Context, *budget.Plan) (string, error) { return "", errRuntimeBuild }

// errRuntimeBuild: the runtime build runs the stack's components, one a
// process (crawlctl run COMPONENT), and no provider.
var errRuntimeBuild = errors.New("this crawlctl is the runtime build (-tags crawlctl_runtime), which runs the stack's components " +
	"(crawlctl run COMPONENT) but brings no stack up, locally or in a cluster: use a crawlctl built without the tag (go install github.com/crawlctl/crawlctl/cmd/crawlctl)")
