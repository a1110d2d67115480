package stack

import (
	"io"
	"time"
)

// UpOptions are what `up` needs besides the plan. DefaultUpOptions holds
// their defaults, which up's flags show.
type UpOptions struct {
	// Timeout bounds the wait for the stack to be ready (0: the
	// provider's own default, longer for a cluster, which pulls images).
	Timeout time.Duration
	// Target is the crawl target; empty runs the Open Library simulator.
	Target string
	// SimTimeFactor scales the simulator's rate limits.
	SimTimeFactor float64
	// ProxyAssignment is the workers' choice of egress: pace or hash.
	ProxyAssignment string
	// ScrapeInterval is how often the local metrics store scrapes.
	ScrapeInterval time.Duration
	// GridListen is where the local stack's grid listens (empty:
	// 127.0.0.1:8080, the seed's address, or a free port when that one is
	// taken; a running grid keeps its address).
	GridListen string

	// Image and BrowserImage are the runtime images of a cluster stack
	// (kind builds and loads them when empty); RuntimeBinary is the build
	// kind puts in them.
	Image, BrowserImage, RuntimeBinary string
	// BrowserBase is the image kind builds the browser worker image on
	// (empty: the official Playwright image, which needs a registry). A
	// base must have Chromium on PATH as chromium and playwright-core
	// playwright.Version under playwright.ImagePrefix.
	BrowserBase string
	// NodeImage is the kind node image (empty: the one kind's release
	// pins; scripts/kind-offline.sh builds one here).
	NodeImage string
	// ClusterOnly stops the kind provider once its cluster is ready: no
	// images, KEDA or chart (a later up installs them).
	ClusterOnly bool
	// Wait waits for every workload of a cluster stack to be ready.
	Wait bool
	// InstallKEDA installs KEDA from its chart when the cluster has none
	// (nil: the provider's default, yes for kind and no for kube, so an
	// operator is not put into someone's cluster unasked).
	InstallKEDA *bool
	// KEDARepo and KEDAVersion are where KEDA's chart comes from.
	KEDARepo, KEDAVersion string
	// Values and Set are the user's chart values for a cluster stack, as
	// helm's -f FILE and --set K=V (images, kafka.standIn, ...).
	Values, Set []string
}

// KEDA's official chart, the version the stack is tested with.
const (
	KEDARepo    = "https://kedacore.github.io/charts"
	KEDAVersion = "2.17.0"
)

// DefaultUpOptions are up's defaults.
func DefaultUpOptions() UpOptions {
	return UpOptions{SimTimeFactor: 1, ProxyAssignment: "pace", ScrapeInterval: 5 * time.Second, Wait: true,
		KEDARepo: KEDARepo, KEDAVersion: KEDAVersion}
}

// DownOptions are what `down` needs.
type DownOptions struct {
	// Purge also deletes the stack's state directory (logs, graph store,
	// metrics).
	Purge bool
	// Timeout bounds the wait for the stack to stop (0: the provider's
	// default).
	Timeout time.Duration
}

// Report is what a provider's Up or Status reports: a table for people,
// and its JSON form for -o json.
type Report interface {
	WriteTable(w io.Writer) error
}

// Capacity is what a cluster's schedulable nodes can allocate.
type Capacity struct {
	Nodes    int   `json:"nodes"`
	MemoryMi int64 `json:"memoryMi"`
	CPUm     int64 `json:"cpum"`
}

// DryRunOptions are what `up --dry-run` needs.
type DryRunOptions struct {
	// Dir is where the files are written.
	Dir string
	// HostMemoryMi is the Docker VM's memory, so that kind's kubelet
	// reserves what is above the budget (0: the budget's).
	HostMemoryMi int64
}
