package kind

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/yaml"

	"github.com/crawlctl/crawlctl/pkg/budget"
)

func plan(t *testing.T, mutate func(*budget.Input)) *budget.Plan {
	t.Helper()
	in := budget.DefaultInput()
	if mutate != nil {
		mutate(&in)
	}
	p, err := budget.Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfig(t *testing.T) {
	p := plan(t, nil)
	c, err := Config(Options{Name: "crawl", Plan: p, HostMemoryMi: 16384})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	// What kind reads back, strictly: no field it does not know.
	var back v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(b, &back); err != nil {
		t.Fatalf("the generated config does not decode strictly: %v\n%s", err, b)
	}
	if len(back.Nodes) != 1 || back.Nodes[0].Role != v1alpha4.ControlPlaneRole {
		t.Fatalf("nodes: %+v", back.Nodes)
	}
	if img := back.Nodes[0].Image; !strings.Contains(img, "@sha256:") {
		t.Errorf("node image %q is not pinned by digest", img)
	}
	ports := map[int32]int32{}
	for _, m := range back.Nodes[0].ExtraPortMappings {
		if m.ListenAddress != "127.0.0.1" {
			t.Errorf("port %d listens on %q, not loopback", m.HostPort, m.ListenAddress)
		}
		ports[m.HostPort] = m.ContainerPort
	}
	for host, node := range map[int32]int32{8088: NodePorts.API, 9090: NodePorts.Prometheus, 8080: NodePorts.Grid} {
		if ports[host] != node {
			t.Errorf("host port %d maps to %d, want %d", host, ports[host], node)
		}
	}
	// The kubelet reserves what the host has beyond the budget, so the
	// node's allocatable memory is the budget: 16384 - 8192.
	if len(back.KubeadmConfigPatches) != 1 {
		t.Fatalf("patches: %v", back.KubeadmConfigPatches)
	}
	var kubelet struct {
		Kind           string
		SystemReserved map[string]string `json:"systemReserved"`
		EvictionHard   map[string]string `json:"evictionHard"`
	}
	if err := yaml.Unmarshal([]byte(back.KubeadmConfigPatches[0]), &kubelet); err != nil {
		t.Fatal(err)
	}
	if kubelet.Kind != "KubeletConfiguration" || kubelet.SystemReserved["memory"] != "8192Mi" || kubelet.EvictionHard["memory.available"] != "100Mi" {
		t.Errorf("kubelet patch: %+v", kubelet)
	}

	if _, err := Config(Options{Name: "crawl", Plan: p, HostMemoryMi: 4096}); err == nil || !strings.Contains(err.Error(), "lower --node-memory") {
		t.Errorf("a host smaller than the budget: %v", err)
	}
}

// fakeDocker stands in for a Docker daemon, which cannot run here: it
// answers the calls the preflight makes, /_ping and /info, on a unix
// socket, with the info given, and takes container updates.
func fakeDocker(t *testing.T, info map[string]any) *client.Client {
	c, _ := fakeDockerUpdates(t, info)
	return c
}

// containerUpdate is one POST /containers/{id}/update the fake received.
type containerUpdate struct {
	id   string
	body map[string]any
}

func fakeDockerUpdates(t *testing.T, info map[string]any) (*client.Client, *[]containerUpdate) {
	t.Helper()
	var updates []containerUpdate
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.51")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/info"):
			json.NewEncoder(w).Encode(info)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/update"):
			parts := strings.Split(r.URL.Path, "/")
			u := containerUpdate{id: parts[len(parts)-2]}
			if err := json.NewDecoder(r.Body).Decode(&u.body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			updates = append(updates, u)
			json.NewEncoder(w).Encode(map[string]any{"Warnings": []string{}})
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := client.New(client.WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	return c, &updates
}

func TestPreflight(t *testing.T) {
	enough := map[string]any{"MemTotal": int64(16) << 30, "NCPU": 8, "CgroupVersion": "2", "OperatingSystem": "Docker Desktop"}
	onPath := func(string) (string, error) { return "/usr/bin/docker", nil }
	cases := []struct {
		name     string
		info     map[string]any
		lookPath func(string) (string, error)
		want     []string // each in the error; none: no error
	}{
		{"enough", enough, onPath, nil},
		{"small VM", map[string]any{"MemTotal": int64(4) << 30, "NCPU": 2, "CgroupVersion": "2"}, onPath,
			[]string{"Docker has 4096Mi of memory, the budget needs 8192Mi", "Settings → Resources → Memory", "Docker has 2 CPUs, the budget needs 4000m"}},
		{"cgroup v1 and no CLI", map[string]any{"MemTotal": int64(16) << 30, "NCPU": 8, "CgroupVersion": "1"},
			func(string) (string, error) { return "", errors.New("not found") },
			[]string{"cgroup v1", "needs cgroup v2", "the docker CLI is not on PATH"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Preflight(context.Background(), fakeDocker(t, c.info), plan(t, nil), c.lookPath)
			if len(c.want) == 0 {
				if err != nil || f.MemoryMi != 16384 || f.CPUs != 8 {
					t.Fatalf("got %+v, %v", f, err)
				}
				return
			}
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}

func TestPreflightWithoutDaemon(t *testing.T) {
	c, err := client.New(client.WithHost("unix://" + filepath.Join(t.TempDir(), "none.sock")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Preflight(context.Background(), c, plan(t, nil), nil)
	for _, w := range []string{"no Docker daemon answers at unix://", "crawlctl up --provider local"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
}

func TestCapNodeLimitsMemoryAndSwapToTheBudget(t *testing.T) {
	c, updates := fakeDockerUpdates(t, nil)
	if err := CapNode(context.Background(), c, "crawl", 8192); err != nil {
		t.Fatal(err)
	}
	if len(*updates) != 1 {
		t.Fatalf("%d container updates, want 1", len(*updates))
	}
	u := (*updates)[0]
	want := float64(8192 << 20)
	if u.id != "crawl-control-plane" || u.body["Memory"] != want || u.body["MemorySwap"] != want {
		t.Errorf("update of %s with Memory %v MemorySwap %v; want crawl-control-plane with %v for both", u.id, u.body["Memory"], u.body["MemorySwap"], want)
	}
}

// fakeKind stands in for kind's provider, which needs a Docker daemon: it
// lists the clusters given and records creations.
type fakeKind struct {
	clusters []string
	created  []string
	deleted  []string
	listErr  error
}

func (f *fakeKind) List() ([]string, error) { return f.clusters, f.listErr }
func (f *fakeKind) Create(name string, _ ...kindcluster.CreateOption) error {
	f.created = append(f.created, name)
	f.clusters = append(f.clusters, name)
	return nil
}
func (f *fakeKind) KubeConfig(string, bool) (string, error) { return "", nil }
func (f *fakeKind) Delete(name, _ string) error {
	f.deleted = append(f.deleted, name)
	f.clusters = slices.DeleteFunc(f.clusters, func(c string) bool { return c == name })
	return nil
}

func TestEnsureCreatesOnlyAMissingCluster(t *testing.T) {
	cfg, err := Config(Options{Name: "crawl", Plan: plan(t, nil), HostMemoryMi: 16384})
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKind{clusters: []string{"other"}}
	for i, want := range []bool{true, false} {
		created, err := Ensure(k, cfg, time.Minute)
		if err != nil || created != want {
			t.Fatalf("Ensure #%d = %v, %v; want %v", i+1, created, err, want)
		}
	}
	if len(k.created) != 1 || k.created[0] != "crawl" {
		t.Errorf("created %v, want [crawl] once: kind's create is not idempotent", k.created)
	}
	if _, err := Ensure(&fakeKind{listErr: errors.New("docker: not found")}, cfg, time.Minute); err == nil || !strings.Contains(err.Error(), "listing kind clusters") {
		t.Errorf("Ensure with a failing list: %v", err)
	}
}

func TestDeleteIsIdempotent(t *testing.T) {
	k := &fakeKind{clusters: []string{"crawl", "other"}}
	for i, want := range []bool{true, false} {
		was, err := Delete(k, "crawl")
		if err != nil || was != want {
			t.Fatalf("Delete #%d = %v, %v; want %v", i+1, was, err, want)
		}
	}
	if !slices.Equal(k.deleted, []string{"crawl"}) || !slices.Equal(k.clusters, []string{"other"}) {
		t.Errorf("deleted %v leaving %v; want crawl deleted once and other kept", k.deleted, k.clusters)
	}
}
