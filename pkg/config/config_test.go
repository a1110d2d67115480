package config

import (
	"slices"
	"testing"

	"github.com/spf13/pflag"
)

func TestEnvVar(t *testing.T) {
	for key, want := range map[string]string{
		"proxies":                      "CRAWLCTL_PROXIES",
		"node-memory":                  "CRAWLCTL_NODE_MEMORY",
		"sizes.graph-writer.cpu-limit": "CRAWLCTL_SIZES_GRAPH_WRITER_CPU_LIMIT",
	} {
		if got := EnvVar(key); got != want {
			t.Errorf("EnvVar(%q) = %q, want %q", key, got, want)
		}
	}
}

// TestEveryFlagHasAKey checks that each budget and global flag is tied to a
// real setting, and that every setting but none is reachable by a flag.
func TestEveryFlagHasAKey(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddGlobalFlags(fs)
	AddBudgetFlags(fs)
	AddNodeImageFlag(fs)
	var keys []string
	for _, s := range Settings() {
		keys = append(keys, s.Key)
	}
	bound := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) {
		k := f.Annotations[KeyAnnotation]
		if len(k) != 1 || !slices.Contains(keys, k[0]) {
			t.Errorf("flag --%s is tied to %v, not a setting", f.Name, k)
			return
		}
		bound[k[0]] = true
	})
	for _, k := range keys {
		if !bound[k] {
			t.Errorf("setting %q has no flag", k)
		}
	}
	if len(keys) < 20 {
		t.Errorf("only %d settings found: %v", len(keys), keys)
	}
}
