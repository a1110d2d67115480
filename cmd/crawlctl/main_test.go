package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// invocation runs crawlctl in-process with its own config home, so no
// developer's config file or CRAWLCTL_ variable leaks in.
type invocation struct {
	args       []string
	env        map[string]string
	configFile string // written to $XDG_CONFIG_HOME/crawlctl/config.yaml
	stateHome  string // XDG_STATE_HOME shared by invocations; default a new one
}

type result struct {
	code        int
	out, errOut string
}

func (inv invocation) run(t *testing.T) result {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "CRAWLCTL_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	if inv.stateHome == "" {
		inv.stateHome = home
	}
	t.Setenv("XDG_STATE_HOME", inv.stateHome) // never a developer's running stack
	if inv.configFile != "" {
		dir := filepath.Join(home, "crawlctl")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(inv.configFile), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range inv.env {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), inv.args, &out, &errOut)
	return result{code: code, out: out.String(), errOut: errOut.String()}
}

func TestExitCodesAndMessages(t *testing.T) {
	tests := []struct {
		name       string
		inv        invocation
		wantCode   int
		wantOut    string
		wantErrOut string
	}{
		{"budget table", invocation{args: []string{"budget"}}, 0, "remainder for workers + graph writers: 3776Mi", ""},
		{"version", invocation{args: []string{"version"}}, 0, "crawlctl dev", ""},
		{"help", invocation{args: []string{"--help"}}, 0, "Available Commands", ""},
		{"completion", invocation{args: []string{"completion", "bash"}}, 0, "bash completion", ""},
		{"unknown command", invocation{args: []string{"bugdet"}}, exitUsage, "", `unknown command "bugdet" for "crawlctl"; did you mean budget?`},
		{"unknown component", invocation{args: []string{"run", "work"}}, exitUsage, "", "did you mean worker?"},
		{"unknown flag", invocation{args: []string{"budget", "--proxy", "2"}}, exitUsage, "", "unknown flag: --proxy"},
		{"bad flag value", invocation{args: []string{"budget", "--proxies", "three"}}, exitUsage, "", `invalid argument "three"`},
		{"zero proxies", invocation{args: []string{"budget", "--proxies", "0"}}, exitUsage, "", "proxies must be at least 1"},
		{"bad quantity", invocation{args: []string{"budget", "--node-memory", "8GB"}}, exitUsage, "", `node-memory "8GB" is not a quantity`},
		{"bad size flag", invocation{args: []string{"budget", "--worker-memory-limit", "64 megs"}}, exitUsage, "", `sizes.worker.memory-limit "64 megs"`},
		{"does not fit", invocation{args: []string{"budget", "--node-memory", "2Gi"}}, exitUsage, "", "does not fit in 2048Mi"},
		{"too many graph writers", invocation{args: []string{"budget", "--profile", "reference", "--graph-writers", "33"}}, exitUsage, "", "more than the cap of 31"},
		{"bad output", invocation{args: []string{"budget", "-o", "xml"}}, exitUsage, "", `output "xml" is not a format`},
		{"bad env", invocation{args: []string{"budget"}, env: map[string]string{"CRAWLCTL_PROXIES": "lots"}}, exitUsage, "", "proxies"},
		{"unknown config key", invocation{args: []string{"budget"}, configFile: "proxys: 4\n"}, exitUsage, "", "proxys"},
		{"broken config file", invocation{args: []string{"budget"}, configFile: "proxies: [\n"}, exitUsage, "", "is not valid YAML"},
		{"missing explicit config", invocation{args: []string{"budget", "--config", "/nonexistent/c.yaml"}}, exitUsage, "", "/nonexistent/c.yaml"},
		{"up kind without docker", invocation{args: []string{"up", "--provider", "kind"}, env: map[string]string{"DOCKER_HOST": "unix:///nonexistent/docker.sock"}},
			exitError, "", "no Docker daemon answers at unix:///nonexistent/docker.sock"},
		{"up kind without docker names local", invocation{args: []string{"up", "--provider", "kind"}, env: map[string]string{"DOCKER_HOST": "unix:///nonexistent/docker.sock"}},
			exitError, "", "crawlctl up --provider local"},
		{"dry run needs kind", invocation{args: []string{"up", "--provider", "local", "--dry-run"}}, exitUsage, "", "--dry-run shows what the kind or kube provider would create"},
		{"up kube no kubeconfig", invocation{args: []string{"up", "--provider", "kube", "--kubeconfig", "/nonexistent/kubeconfig"}}, exitError, "", "reading the kubeconfig"},
		{"up kube no cluster", invocation{args: []string{"up", "--provider", "kube", "--kubeconfig", "testdata/unreachable.kubeconfig"}}, exitError, "", "the cluster at https://127.0.0.1:1 does not answer"},
		{"dry run bad host memory", invocation{args: []string{"up", "--provider", "kind", "--dry-run", "--host-memory", "lots"}}, exitUsage, "", `--host-memory "lots"`},
		{"dry run host too small", invocation{args: []string{"up", "--provider", "kind", "--dry-run", "--host-memory", "4Gi"}}, exitUsage, "", "lower --node-memory"},
		{"up unknown provider", invocation{args: []string{"up", "--provider", "docker"}}, exitUsage, "", `provider "docker" is unknown`},
		{"up does not fit", invocation{args: []string{"up", "--provider", "local", "--node-memory", "2Gi"}}, exitUsage, "", "does not fit in 2048Mi"},
		{"status when down", invocation{args: []string{"status"}}, exitError, "", `stack "crawl" is not up: run`},
		{"seed when down", invocation{args: []string{"seed", "--count", "3"}}, exitError, "", "is not up: run `crawlctl up` first"},
		{"seed no seeds", invocation{args: []string{"seed"}}, exitUsage, "", "no seeds: give --count N"},
		{"seed too many", invocation{args: []string{"seed", "--count", "21"}}, exitUsage, "", "there are 20 built-in seeds"},
		{"down when down", invocation{args: []string{"down"}}, exitOK, "", `stack "crawl" was not up`},
		{"down kind without docker", invocation{args: []string{"down", "--provider", "kind"}, env: map[string]string{"DOCKER_HOST": "unix:///nonexistent/docker.sock"}},
			exitError, "", "listing kind clusters"},
		{"down bad provider", invocation{args: []string{"down", "--provider", "docker"}}, exitUsage, "", `down --provider "docker": give kind`},
		{"run grid open", invocation{args: []string{"run", "grid", "--listen", ":0", "--worker", "http://127.0.0.1:1"}}, exitUsage, "", "--listen :0 is reachable from other hosts: set --token"},
		{"run api open", invocation{args: []string{"run", "api", "--listen", "0.0.0.0:0"}}, exitUsage, "", "--listen 0.0.0.0:0 is reachable from other hosts: set --token (or CRAWLCTL_TOKEN)"},
		{"run api token from env", invocation{args: []string{"run", "api", "--listen", "0.0.0.0:0", "--redis", "127.0.0.1:1"}, env: map[string]string{"CRAWLCTL_TOKEN": "s3cret"}},
			exitError, "", "connecting to Redis at 127.0.0.1:1"},
		{"run grid no workers", invocation{args: []string{"run", "grid", "--listen", "127.0.0.1:0"}}, exitUsage, "", "no browser workers: give --redis"},
		{"run grid no redis", invocation{args: []string{"run", "grid", "--listen", "127.0.0.1:0", "--redis", "127.0.0.1:1"}}, exitError, "", "connecting to Redis at 127.0.0.1:1"},
		{"run browser bad env", invocation{args: []string{"run", "browser"}, env: map[string]string{"MAX_LIFETIME_SESSIONS": "lots"}}, exitUsage, "", `MAX_LIFETIME_SESSIONS="lots" is not a number`},
		{"run browser open", invocation{args: []string{"run", "browser", "--listen", "0.0.0.0:0"}}, exitUsage, "", "reachable from other hosts: set --token"},
		{"run proxy open", invocation{args: []string{"run", "proxy", "--target", "", "--admin-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"}}, exitUsage, "", "an open proxy is never the default"},
		{"run proxy wildcard", invocation{args: []string{"run", "proxy", "--allow", "*", "--admin-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"}}, exitUsage, "", "would make an open proxy"},
		{"run proxy bad egress", invocation{args: []string{"run", "proxy", "--egress-ip", "nope"}}, exitUsage, "", `--egress-ip "nope" is not an IP address`},
		{"run worker bad target", invocation{args: []string{"run", "worker", "--target", "ftp://x"}}, exitUsage, "", "--target: target \"ftp://x\" is not an http(s) base URL"},
		{"run worker bad env", invocation{args: []string{"run", "worker"}, env: map[string]string{"CRAWLCTL_CONCURRENT_JOBS": "many"}}, exitUsage, "", `CRAWLCTL_CONCURRENT_JOBS="many"`},
		{"run worker no redis", invocation{args: []string{"run", "worker", "--redis", "127.0.0.1:1"}}, exitError, "", "connecting to Redis at 127.0.0.1:1"},
		{"run olsim bad rule", invocation{args: []string{"run", "olsim", "--rule", "authors:/authors/"}}, exitUsage, "", "is not NAME:PREFIX:RATE[:BURST]"},
		{"collect when down", invocation{args: []string{"collect"}}, exitError, "", "is not up: run `crawlctl up`"},
		{"logs unknown", invocation{args: []string{"logs", "nope"}}, exitUsage, "", `no log for "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.inv.run(t)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.wantCode, r.out, r.errOut)
			}
			if !strings.Contains(r.out, tt.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantOut, r.out)
			}
			if !strings.Contains(r.errOut, tt.wantErrOut) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErrOut, r.errOut)
			}
			if tt.wantCode != 0 && r.out != "" {
				t.Errorf("a failing command printed to stdout: %q", r.out)
			}
		})
	}
}

func TestBudgetJSONAcceptance(t *testing.T) {
	tests := []struct {
		args        []string
		remainderMi int64
		maxReplicas int
	}{
		{[]string{"--profile", "reference", "--proxies", "3"}, 2048, 32},
		{[]string{"--profile", "reference", "--proxies", "4"}, 1664, 26},
	}
	for _, tt := range tests {
		r := invocation{args: append([]string{"budget", "-o", "json"}, tt.args...)}.run(t)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, r.code, r.errOut)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(r.out), &got); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, r.out)
		}
		for _, k := range []string{"profile", "nodeMemoryMi", "proxies", "remainderMi", "maxReplicas", "maxWorkers", "graphWriters", "kedaMaxReplicaCount", "components"} {
			if _, ok := got[k]; !ok {
				t.Errorf("JSON lacks key %q", k)
			}
		}
		if got["remainderMi"] != float64(tt.remainderMi) || got["maxReplicas"] != float64(tt.maxReplicas) {
			t.Errorf("%v: remainderMi %v maxReplicas %v, want %d %d", tt.args, got["remainderMi"], got["maxReplicas"], tt.remainderMi, tt.maxReplicas)
		}
		names := map[string]bool{}
		for _, c := range got["components"].([]any) {
			row := c.(map[string]any)
			for _, k := range []string{"name", "replicas", "requestMemoryMi", "limitMemoryMi", "requestCPUm", "limitCPUm"} {
				if _, ok := row[k]; !ok {
					t.Errorf("component %v lacks %q", row["name"], k)
				}
			}
			names[row["name"].(string)] = true
		}
		if !names["worker"] || !names["graph-writer"] {
			t.Errorf("components lack worker or graph-writer: %v", names)
		}
	}
	// YAML carries the same keys.
	r := invocation{args: []string{"budget", "-o", "yaml", "--profile", "reference"}}.run(t)
	var y map[string]any
	if err := yaml.Unmarshal([]byte(r.out), &y); err != nil || y["maxReplicas"] != float64(32) {
		t.Errorf("YAML output: %v, maxReplicas %v", err, y["maxReplicas"])
	}
}

// TestConfigPrecedence checks flag > env > config file > default, for a
// top-level key and a nested size key.
func TestConfigPrecedence(t *testing.T) {
	const file = "proxies: 5\nsizes:\n  worker:\n    memory-limit: 96Mi\n"
	tests := []struct {
		name        string
		inv         invocation
		proxies     int
		workerLimit string
	}{
		{"default", invocation{}, 3, "64Mi"},
		{"file", invocation{configFile: file}, 5, "96Mi"},
		{"env over file", invocation{configFile: file, env: map[string]string{"CRAWLCTL_PROXIES": "6", "CRAWLCTL_SIZES_WORKER_MEMORY_LIMIT": "128Mi"}}, 6, "128Mi"},
		{"flag over env", invocation{args: []string{"--proxies", "7", "--worker-memory-limit", "80Mi"}, configFile: file, env: map[string]string{"CRAWLCTL_PROXIES": "6", "CRAWLCTL_SIZES_WORKER_MEMORY_LIMIT": "128Mi"}}, 7, "80Mi"},
		{"explicit config via env", invocation{env: map[string]string{"CRAWLCTL_CONFIG": "testdata/config.yaml"}}, 4, "64Mi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := tt.inv
			inv.args = append([]string{"config", "view", "-o", "json"}, inv.args...)
			r := inv.run(t)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.errOut)
			}
			var got struct {
				Proxies int `json:"proxies"`
				Sizes   struct {
					Worker struct {
						MemoryLimit string `json:"memory-limit"`
					} `json:"worker"`
				} `json:"sizes"`
			}
			if err := json.Unmarshal([]byte(r.out), &got); err != nil {
				t.Fatalf("%v\n%s", err, r.out)
			}
			if got.Proxies != tt.proxies || got.Sizes.Worker.MemoryLimit != tt.workerLimit {
				t.Errorf("proxies %d, worker limit %s; want %d, %s", got.Proxies, got.Sizes.Worker.MemoryLimit, tt.proxies, tt.workerLimit)
			}
		})
	}
	// The effective configuration reaches the budget, not only config view.
	r := invocation{args: []string{"budget", "-o", "json", "--profile", "reference"}, env: map[string]string{"CRAWLCTL_SIZES_WORKER_MEMORY_LIMIT": "128Mi"}}.run(t)
	if !strings.Contains(r.out, `"maxReplicas": 16`) {
		t.Errorf("env size did not reach the budget:\n%s", r.out)
	}
}

// TestConfigViewIsAConfigFile round-trips config view's YAML through --config.
func TestConfigViewIsAConfigFile(t *testing.T) {
	r := invocation{args: []string{"config", "view", "-o", "yaml", "--proxies", "2", "--grafana"}}.run(t)
	if r.code != 0 {
		t.Fatal(r.errOut)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(r.out), 0o644); err != nil {
		t.Fatal(err)
	}
	r2 := invocation{args: []string{"config", "view", "-o", "yaml", "--config", path}}.run(t)
	if r2.code != 0 || r2.out != r.out {
		t.Errorf("round trip differs (exit %d, %s):\n%s\nvs\n%s", r2.code, r2.errOut, r.out, r2.out)
	}
}

func TestUpKindDryRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	r := invocation{args: []string{"up", "--provider", "kind", "--dry-run", "-d", dir, "--host-memory", "16Gi", "--proxies", "4"}}.run(t)
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.errOut)
	}
	path := filepath.Join(dir, "kind-config.yaml")
	manifests := filepath.Join(dir, "manifests.yaml")
	if strings.TrimSpace(r.out) != path+"\n"+manifests {
		t.Errorf("printed %q, want %s and %s", r.out, path, manifests)
	}
	m, err := os.ReadFile(manifests)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: StatefulSet", "name: proxy", "replicas: 4", "kind: ScaledObject"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("manifests.yaml lacks %q", want)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Cluster", "memory: 8192Mi", "hostPort: 8080", "@sha256:"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("kind-config.yaml lacks %q:\n%s", want, b)
		}
	}
}
