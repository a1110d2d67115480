//go:build crawlctl_runtime

package cluster

import (
	"context"

	"github.com/crawlctl/crawlctl/pkg/stack"
)

func newCluster(string, options) (Provider, error) { return nil, errRuntimeBuild }

func fromRecord(stack.Record, options) (Provider, error) { return nil, errRuntimeBuild }

func dockerPing(context.Context) error { return errRuntimeBuild }
