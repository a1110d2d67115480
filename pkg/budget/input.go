package budget

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/crawlctl/crawlctl/pkg/topics"
)

// Profile selects which component list a plan is computed for.
type Profile string

const (
	// ProfileCrawlctl lists exactly what crawlctl deploys, with its charts' sizes.
	ProfileCrawlctl Profile = "crawlctl"
	// ProfileReference reproduces the reference crawler's 8 GiB table.
	ProfileReference Profile = "reference"
)

// Profiles lists the valid profiles, default first.
var Profiles = []Profile{ProfileCrawlctl, ProfileReference}

// Size is one pod's requests and limits in Kubernetes quantity notation
// (128Mi, 0.5Gi, 50m, 1). Strings, so config files and flags carry exactly
// what the user wrote and errors can quote it.
type Size struct {
	MemoryRequest string `mapstructure:"memory-request" json:"memory-request"`
	MemoryLimit   string `mapstructure:"memory-limit" json:"memory-limit"`
	CPURequest    string `mapstructure:"cpu-request" json:"cpu-request"`
	CPULimit      string `mapstructure:"cpu-limit" json:"cpu-limit"`
}

// Sizes are the per-pod sizes a user may override.
type Sizes struct {
	Proxy       Size `mapstructure:"proxy" json:"proxy"`
	Worker      Size `mapstructure:"worker" json:"worker"`
	GraphWriter Size `mapstructure:"graph-writer" json:"graph-writer"`
	Browser     Size `mapstructure:"browser" json:"browser"`
}

// Input is everything a plan depends on. Its field tags are the config keys
// (and flag names) that set them.
type Input struct {
	Profile      Profile `mapstructure:"profile" json:"profile"`
	NodeMemory   string  `mapstructure:"node-memory" json:"node-memory"`
	NodeCPU      string  `mapstructure:"node-cpu" json:"node-cpu"`
	Proxies      int     `mapstructure:"proxies" json:"proxies"`
	GraphWriters int     `mapstructure:"graph-writers" json:"graph-writers"`
	GridWorkers  int     `mapstructure:"grid-workers" json:"grid-workers"`
	Partitions   int     `mapstructure:"partitions" json:"partitions"`
	Grafana      bool    `mapstructure:"grafana" json:"grafana"`
	Sizes        Sizes   `mapstructure:"sizes" json:"sizes"`
}

// DefaultInput is the 8 GiB single-node plan with three egress proxies.
func DefaultInput() Input {
	return Input{
		Profile:      ProfileCrawlctl,
		NodeMemory:   "8Gi",
		NodeCPU:      "4",
		Proxies:      3,
		GraphWriters: 1,
		GridWorkers:  0,
		Partitions:   topics.DefaultFrontierPartitions,
		Sizes: Sizes{
			Proxy: Size{MemoryRequest: "128Mi", MemoryLimit: "384Mi", CPURequest: "50m", CPULimit: "200m"},
			// A worker at the reference's 100m limit was throttled in half
			// of its CFS periods on kind at 57 fetches/s; the limit reserves
			// nothing, so it lets a lone worker (and the writer) burst.
			Worker:      Size{MemoryRequest: "32Mi", MemoryLimit: "64Mi", CPURequest: "50m", CPULimit: "300m"},
			GraphWriter: Size{MemoryRequest: "32Mi", MemoryLimit: "64Mi", CPURequest: "50m", CPULimit: "300m"},
			// Headless Chromium with five live contexts: about 100-200 MiB
			// per context on top of the browser and the Node.js server.
			Browser: Size{MemoryRequest: "512Mi", MemoryLimit: "1536Mi", CPURequest: "500m", CPULimit: "2"},
		},
	}
}

// InputError is bad input: the user must change a flag or setting. The CLI
// exits with status 2 for it.
type InputError struct{ msg string }

func (e *InputError) Error() string { return e.msg }

func inputErrorf(format string, args ...any) error {
	return &InputError{msg: fmt.Sprintf(format, args...)}
}

// IsInputError reports whether err is (or wraps) an InputError.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// Resources is a parsed Size: memory in MiB and CPU in millicores.
type Resources struct {
	RequestMemoryMi int64
	LimitMemoryMi   int64
	RequestCPUm     int64
	LimitCPUm       int64
}

const mebibyte = 1 << 20

// parseQuantity parses one quantity; key names the setting for the error.
func parseQuantity(key, value string) (resource.Quantity, error) {
	q, err := resource.ParseQuantity(value)
	if err != nil {
		return q, inputErrorf("%s %q is not a quantity: use Kubernetes notation such as 8Gi, 384Mi or 500m", key, value)
	}
	if q.Sign() < 0 {
		return q, inputErrorf("%s %q is negative: give a size of zero or more", key, value)
	}
	return q, nil
}

// memoryMi converts a memory quantity to MiB, rounding up: a size never
// shrinks by conversion.
func memoryMi(key, value string) (int64, error) {
	q, err := parseQuantity(key, value)
	if err != nil {
		return 0, err
	}
	return (q.Value() + mebibyte - 1) / mebibyte, nil
}

func cpuMilli(key, value string) (int64, error) {
	q, err := parseQuantity(key, value)
	if err != nil {
		return 0, err
	}
	return q.MilliValue(), nil
}

// Parse checks a Size and converts it; name is its config key prefix
// (sizes.proxy) for error messages.
func (s Size) Parse(name string) (Resources, error) {
	var r Resources
	var err error
	if r.RequestMemoryMi, err = memoryMi(name+".memory-request", s.MemoryRequest); err != nil {
		return r, err
	}
	if r.LimitMemoryMi, err = memoryMi(name+".memory-limit", s.MemoryLimit); err != nil {
		return r, err
	}
	if r.RequestCPUm, err = cpuMilli(name+".cpu-request", s.CPURequest); err != nil {
		return r, err
	}
	if r.LimitCPUm, err = cpuMilli(name+".cpu-limit", s.CPULimit); err != nil {
		return r, err
	}
	if r.LimitMemoryMi == 0 {
		return r, inputErrorf("%s.memory-limit is zero: every pod needs a memory limit", name)
	}
	if r.RequestMemoryMi > r.LimitMemoryMi {
		return r, inputErrorf("%s: memory request %s is above its limit %s: lower the request or raise the limit", name, s.MemoryRequest, s.MemoryLimit)
	}
	if r.RequestCPUm > r.LimitCPUm {
		return r, inputErrorf("%s: CPU request %s is above its limit %s: lower the request or raise the limit", name, s.CPURequest, s.CPULimit)
	}
	return r, nil
}
