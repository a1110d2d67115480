package kind

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/yaml"

	"github.com/crawlctl/crawlctl/pkg/budget"
	"github.com/crawlctl/crawlctl/pkg/playwright"
	"github.com/crawlctl/crawlctl/pkg/stack"
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
	for host, node := range map[int32]int32{8088: stack.NodePorts.API, 9090: stack.NodePorts.Prometheus, 8080: stack.NodePorts.Grid} {
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

// fakeDaemon stands in for a Docker daemon, which cannot run here. On a
// unix socket it answers what crawlctl asks: /_ping and /info (with the
// info given), container updates (recorded), image inspection and builds
// (the build context's files recorded; the image exists afterwards).
type fakeDaemon struct {
	info     map[string]any
	mu       sync.Mutex
	updates  []containerUpdate
	images   map[string]bool
	contexts []map[string]buildFile // each build's files by name
	buildErr string                 // a build fails with this message
}

// containerUpdate is one POST /containers/{id}/update.
type containerUpdate struct {
	id   string
	body map[string]any
}

type buildFile struct {
	mode int64
	data []byte
}

func fakeDocker(t *testing.T, info map[string]any) *client.Client {
	c, _ := startFakeDaemon(t, &fakeDaemon{info: info})
	return c
}

func startFakeDaemon(t *testing.T, f *fakeDaemon) (*client.Client, *fakeDaemon) {
	t.Helper()
	f.images = map[string]bool{}
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(f.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := client.New(client.WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	return c, f
}

func (f *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Api-Version", "1.51")
	path := r.URL.Path
	switch {
	case strings.HasSuffix(path, "/_ping"):
		w.Write([]byte("OK"))
	case strings.HasSuffix(path, "/info"):
		json.NewEncoder(w).Encode(f.info)
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/update"):
		parts := strings.Split(path, "/")
		u := containerUpdate{id: parts[len(parts)-2]}
		if err := json.NewDecoder(r.Body).Decode(&u.body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.updates = append(f.updates, u)
		json.NewEncoder(w).Encode(map[string]any{"Warnings": []string{}})
	case r.Method == http.MethodGet && strings.Contains(path, "/images/") && strings.HasSuffix(path, "/json"):
		name := path[strings.Index(path, "/images/")+len("/images/") : len(path)-len("/json")]
		if !f.images[name] {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"message": "No such image: " + name})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"Id": "sha256:" + strings.Repeat("ab", 32), "Architecture": "amd64", "Os": "linux"})
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/build"):
		files := map[string]buildFile{}
		tr := tar.NewReader(r.Body)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(tr)
			files[h.Name] = buildFile{mode: h.Mode, data: b}
		}
		f.contexts = append(f.contexts, files)
		enc := json.NewEncoder(w)
		enc.Encode(map[string]string{"stream": "Step 1/4 : FROM scratch\n"})
		if f.buildErr != "" {
			enc.Encode(map[string]any{"error": f.buildErr, "errorDetail": map[string]string{"message": f.buildErr}})
			return
		}
		f.images[r.URL.Query().Get("t")] = true
		enc.Encode(map[string]string{"stream": "Successfully built\n"})
	default:
		http.NotFound(w, r)
	}
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
			[]string{"Docker has 4096Mi of memory, the budget needs 8192Mi", "Settings → Resources → Memory", "--node-memory 4096Mi",
				"Docker has 2 CPUs, the budget needs 4000m", "--node-cpu 2"}},
		{"no CLI", map[string]any{"MemTotal": int64(16) << 30, "NCPU": 8, "CgroupVersion": "2"},
			func(string) (string, error) { return "", errors.New("not found") },
			[]string{"the docker CLI is not on PATH"}},
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
			if !stack.IsUsage(err) {
				t.Errorf("%v is not bad input (exit 2)", err)
			}
		})
	}
}

// TestCgroupV1 is a warning, not a refusal: Docker caps memory on cgroup
// v1 too, and the kubelet is told to run there.
func TestCgroupV1(t *testing.T) {
	info := map[string]any{"MemTotal": int64(16) << 30, "NCPU": 8, "CgroupVersion": "1"}
	f, err := Preflight(context.Background(), fakeDocker(t, info), plan(t, nil), func(string) (string, error) { return "/usr/bin/docker", nil })
	if err != nil || len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], "cgroup v1") {
		t.Fatalf("cgroup v1 host: %+v, %v; want a warning and no error", f, err)
	}
	for _, v1 := range []bool{false, true} {
		c, err := Config(Options{Name: "crawl", Plan: plan(t, nil), HostMemoryMi: 16384, CgroupV1: v1, NodeImage: "crawlctl/kind-node:test"})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(c.KubeadmConfigPatches[0], "failCgroupV1: false"); got != v1 || c.Nodes[0].Image != "crawlctl/kind-node:test" {
			t.Errorf("cgroup v1 %v: patch %q, image %s", v1, c.KubeadmConfigPatches[0], c.Nodes[0].Image)
		}
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
	c, f := startFakeDaemon(t, &fakeDaemon{})
	if err := CapNode(context.Background(), c, "crawl", 8192); err != nil {
		t.Fatal(err)
	}
	if len(f.updates) != 1 {
		t.Fatalf("%d container updates, want 1", len(f.updates))
	}
	u := f.updates[0]
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
func (f *fakeKind) ListNodes(string) ([]nodes.Node, error)  { return nil, nil }
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

// staticBinary builds a small static Linux program.
func staticBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"go.mod":  "module hello\n\ngo 1.26\n",
		"main.go": "package main\n\nfunc main() { println(\"hello\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-o", "hello", ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "hello")
}

func TestBuildImages(t *testing.T) {
	bin := staticBinary(t)
	for _, tc := range []struct {
		name  string
		tagOf func(string) (string, error)
		build func(context.Context, Images, string, string) (bool, error)
		repo  string
		lines []string // in the Dockerfile; the first starts it
	}{
		{"runtime", RuntimeImageTag, BuildRuntimeImage, "crawlctl-runtime",
			[]string{"FROM scratch\n", `ENTRYPOINT ["/crawlctl"]`}},
		{"browser", func(bin string) (string, error) { return BrowserImageTag(bin, "") }, browserOn(""), "crawlctl-browser",
			[]string{"FROM mcr.microsoft.com/playwright:v" + playwright.Version + "-noble\n",
				"npm install --prefix " + playwright.ImagePrefix, "playwright-core@" + playwright.Version,
				"/usr/local/bin/chromium", `ENTRYPOINT ["/usr/local/bin/crawlctl"]`}},
		// A base built here (scripts/kind-offline.sh) has both already.
		{"browser on a base", func(bin string) (string, error) { return BrowserImageTag(bin, "crawlctl/browser-base:1") }, browserOn("crawlctl/browser-base:1"), "crawlctl-browser",
			[]string{"FROM crawlctl/browser-base:1\n", "COPY crawlctl /usr/local/bin/crawlctl", `ENTRYPOINT ["/usr/local/bin/crawlctl"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) { testBuildImage(t, bin, tc.tagOf, tc.build, tc.repo, tc.lines) })
	}
	rt, _ := RuntimeImageTag(bin)
	br, _ := BrowserImageTag(bin, "")
	onBase, _ := BrowserImageTag(bin, "crawlctl/browser-base:1")
	if strings.TrimPrefix(rt, "crawlctl-runtime:") == strings.TrimPrefix(br, "crawlctl-browser:") || br == onBase {
		t.Errorf("the runtime, browser and browser-on-a-base tags share a digest: %s %s %s", rt, br, onBase)
	}
}

// browserOn is BuildBrowserImage on base.
func browserOn(base string) func(context.Context, Images, string, string) (bool, error) {
	return func(ctx context.Context, d Images, bin, tag string) (bool, error) {
		return BuildBrowserImage(ctx, d, bin, tag, base)
	}
}

func testBuildImage(t *testing.T, bin string, tagOf func(string) (string, error),
	build func(context.Context, Images, string, string) (bool, error), repo string, lines []string) {
	c, f := startFakeDaemon(t, &fakeDaemon{})
	ctx := context.Background()
	tag, err := tagOf(bin)
	if err != nil || !strings.HasPrefix(tag, repo+":") || len(tag) != len(repo)+1+12 {
		t.Fatalf("tag = %q, %v", tag, err)
	}
	for i, want := range []bool{true, false} {
		built, err := build(ctx, c, bin, tag)
		if err != nil || built != want {
			t.Fatalf("build #%d = %v, %v; want %v (built once, then found)", i+1, built, err, want)
		}
	}
	if len(f.contexts) != 1 {
		t.Fatalf("%d builds, want 1", len(f.contexts))
	}
	files := f.contexts[0]
	want, _ := os.ReadFile(bin)
	if got := files["crawlctl"]; got.mode != 0o755 || !bytes.Equal(got.data, want) {
		t.Errorf("the build context's crawlctl: mode %o, %d bytes; want 0755 and the binary's %d bytes", got.mode, len(got.data), len(want))
	}
	df := string(files["Dockerfile"].data)
	if !strings.HasPrefix(df, lines[0]) {
		t.Errorf("Dockerfile does not start with %q:\n%s", lines[0], df)
	}
	for _, l := range lines[1:] {
		if !strings.Contains(df, l) {
			t.Errorf("Dockerfile lacks %q:\n%s", l, df)
		}
	}
	if len(files) != 2 {
		t.Errorf("the build context holds %d files, want the Dockerfile and the binary", len(files))
	}

	cf, _ := startFakeDaemon(t, &fakeDaemon{buildErr: "no space left on device"})
	if _, err := build(ctx, cf, bin, tag); err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("a failing build: %v, want the daemon's message", err)
	}
}

func TestBuildRuntimeImageRefusesADynamicBinary(t *testing.T) {
	sh := "/bin/sh"
	if requireStatic(sh) == nil {
		t.Skip("/bin/sh is static here")
	}
	c, f := startFakeDaemon(t, &fakeDaemon{})
	_, err := BuildRuntimeImage(context.Background(), c, sh, "crawlctl-runtime:test")
	if err == nil || !strings.Contains(err.Error(), "build it with CGO_ENABLED=0") {
		t.Errorf("a dynamic binary: %v", err)
	}
	if len(f.contexts) != 0 {
		t.Errorf("built anyway")
	}
}

func TestFindRuntimeBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := FindRuntimeBinary(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "--runtime-binary") {
		t.Errorf("a missing --runtime-binary: %v", err)
	}
	if p, self, err := FindRuntimeBinary(exe); err != nil || p != exe || self {
		t.Errorf("an explicit binary: %q %v %v", p, self, err)
	}
	if p, self, err := FindRuntimeBinary(""); err != nil || p != exe || !self {
		t.Errorf("nothing beside: %q %v %v; want the running binary, marked as itself", p, self, err)
	}
	beside := filepath.Join(filepath.Dir(exe), RuntimeBinaryName)
	if err := os.WriteFile(beside, []byte("runtime build"), 0o755); err != nil {
		t.Skipf("cannot write beside the test binary: %v", err)
	}
	defer os.Remove(beside)
	if p, self, err := FindRuntimeBinary(""); err != nil || p != beside || self {
		t.Errorf("a runtime build beside: %q %v %v; want %s", p, self, err, beside)
	}
}

// inspector answers ContainerInspect for one container (it stands in for
// the Docker API; TestRealKindCluster checks the real one).
type inspector struct{ name, id string }

func (f inspector) ContainerInspect(_ context.Context, name string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	if name != f.name {
		return client.ContainerInspectResult{}, fmt.Errorf("no such container: %s", name)
	}
	var r client.ContainerInspectResult
	r.Container.ID = f.id
	return r, nil
}

// TestOwnership: a cluster is reused or deleted only when its node is the
// container the stack recorded when it created it.
func TestOwnership(t *testing.T) {
	node := inspector{name: NodeContainer("crawl"), id: "aaaaaaaaaaaaaaaa1"}
	ours := t.TempDir()
	if err := claim(context.Background(), node, ours, "crawl", ""); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		dir  string
		d    inspector
		want string // "" : owned
	}{
		{"created by this stack", ours, node, ""},
		{"no record", t.TempDir(), node, "this stack has no record of creating it"},
		{"made again since", ours, inspector{name: node.name, id: "bbbbbbbbbbbbbbbb2"}, "(bbbbbbbbbbbb) is not the one this stack created (aaaaaaaaaaaa)"},
	}
	for _, c := range cases {
		err := checkOwned(context.Background(), c.d, c.dir, "crawl")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (!stack.IsUsage(err) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "kind delete cluster --name crawl")):
			t.Errorf("%s: got %v, want a usage error with %q and what to do", c.name, err, c.want)
		}
	}
}

// networks stands in for the Docker API's networks (TestRealKindCluster
// checks the real one): one network with attached containers, or none.
type networks struct {
	exists   bool
	attached int
	removed  bool
}

func (n *networks) NetworkInspect(_ context.Context, id string, _ client.NetworkInspectOptions) (client.NetworkInspectResult, error) {
	var r client.NetworkInspectResult
	if !n.exists {
		return r, cerrdefs.ErrNotFound
	}
	r.Network.Containers = map[string]network.EndpointResource{}
	for i := range n.attached {
		r.Network.Containers[fmt.Sprint(i)] = network.EndpointResource{}
	}
	return r, nil
}

func (n *networks) NetworkRemove(context.Context, string, client.NetworkRemoveOptions) (client.NetworkRemoveResult, error) {
	n.removed, n.exists = true, false
	return client.NetworkRemoveResult{}, nil
}

// TestReleaseNetwork: down removes the network its create made only when
// no other container is on it, and a network already gone is no error.
func TestReleaseNetwork(t *testing.T) {
	for _, c := range []struct {
		name        string
		n           networks
		wantRemoved bool
		wantMsg     string
	}{
		{"unused", networks{exists: true}, true, "Docker network kind removed"},
		{"another cluster on it", networks{exists: true, attached: 1}, false, "kept: 1 other container(s) on it"},
		{"already gone", networks{}, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg, err := releaseNetwork(context.Background(), &c.n, "kind")
			if err != nil || c.n.removed != c.wantRemoved || !strings.Contains(msg, c.wantMsg) || (c.wantMsg == "") != (msg == "") {
				t.Errorf("releaseNetwork: %q %v, removed %v; want removed %v and %q", msg, err, c.n.removed, c.wantRemoved, c.wantMsg)
			}
		})
	}
}
