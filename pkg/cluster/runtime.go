//go:build crawlctl_runtime

package cluster

import (
	"context"
	"errors"

	"github.com/crawlctl/crawlctl/pkg/budget"

	"github.com/crawlctl/crawlctl/pkg/stack"
)

func newCluster(string, options) (Provider, error) { return nil, errRuntimeBuild }

func fromRecord(stack.Record, options) (Provider, error) { return nil, errRuntimeBuild }

func kindFits(context.Context, *budget.Plan) (string, error) { return "", errRuntimeBuild }

// errRuntimeBuild: the runtime build runs the stack's components and the
// local provider, but does not deploy.
var errRuntimeBuild = errors.New("this crawlctl is the runtime build (-tags crawlctl_runtime), which runs the stack's components " +
	"and the local provider but does not deploy to a cluster: use a crawlctl built without the tag (go install github.com/crawlctl/crawlctl/cmd/crawlctl)")
