package kind

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// Docker is the part of the Docker API the preflight reads (the moby
// client has it).
type Docker interface {
	Ping(ctx context.Context, o client.PingOptions) (client.PingResult, error)
	Info(ctx context.Context, o client.InfoOptions) (client.SystemInfoResult, error)
	DaemonHost() string
}

// NewDocker is a Docker API client configured from the environment
// (DOCKER_HOST and friends), as the docker CLI is.
func NewDocker() (*client.Client, error) {
	return client.New(client.FromEnv)
}

// Facts are what the daemon reported.
type Facts struct {
	MemoryMi      int64  `json:"memoryMi"`
	CPUs          int    `json:"cpus"`
	CgroupVersion string `json:"cgroupVersion"`
	OS            string `json:"os"`
	// Warnings are what works, but differently than on a current host.
	Warnings []string `json:"warnings,omitempty"`
}

// Preflight checks that a Docker daemon answers and has room for plan:
// memory and CPUs at least the budget's and the docker CLI on PATH (kind
// runs it). It returns every problem at once, each naming the flag or
// setting that fixes it, as bad input (stack.UsageError). A cgroup v1 host
// is a warning: Docker caps the node's memory there too, and the kubelet
// is told to run on it (Config's failCgroupV1: false).
func Preflight(ctx context.Context, d Docker, plan *budget.Plan, lookPath func(string) (string, error)) (Facts, error) {
	var f Facts
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := d.Ping(pctx, client.PingOptions{}); err != nil {
		return f, fmt.Errorf("no Docker daemon answers at %s (%v): start Docker (or point DOCKER_HOST at one), "+
			"or run the stack without Docker: crawlctl up --provider local", d.DaemonHost(), err)
	}
	info, err := d.Info(pctx, client.InfoOptions{})
	if err != nil {
		return f, fmt.Errorf("asking the Docker daemon at %s for its resources: %w", d.DaemonHost(), err)
	}
	f = Facts{MemoryMi: info.Info.MemTotal >> 20, CPUs: info.Info.NCPU, CgroupVersion: info.Info.CgroupVersion, OS: info.Info.OperatingSystem}
	var errs []error
	if _, err := lookPath("docker"); err != nil {
		errs = append(errs, stack.Usagef("the docker CLI is not on PATH: kind runs it to create the node; install it (Debian: docker-ce-cli or docker.io)"))
	}
	if f.MemoryMi < plan.NodeMemoryMi {
		errs = append(errs, stack.Usagef("Docker has %dMi of memory, the budget needs %dMi: give Docker more memory "+
			"(Docker Desktop: Settings → Resources → Memory) or size the node to it with --node-memory %dMi", f.MemoryMi, plan.NodeMemoryMi, f.MemoryMi))
	}
	if int64(f.CPUs)*1000 < plan.NodeCPUm {
		errs = append(errs, stack.Usagef("Docker has %d CPUs, the budget needs %dm: give Docker more CPUs "+
			"(Docker Desktop: Settings → Resources → CPUs) or size the node to it with --node-cpu %d", f.CPUs, plan.NodeCPUm, f.CPUs))
	}
	if f.CgroupVersion == "1" {
		f.Warnings = append(f.Warnings, "the Docker host uses cgroup v1: the node container's memory limit holds, but kubelet 1.35 and later "+
			"run on it only when told to (failCgroupV1: false, which crawlctl sets); a host on cgroup v2 is what Kubernetes supports")
	}
	return f, errors.Join(errs...)
}
