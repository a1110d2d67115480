// Package kubetest holds what tests against a real kube-apiserver
// (testenv.KubeAPIServer) need besides the server: clients, and stand-ins
// for KEDA (its CRD, and a chart repository serving a chart in place of
// its official one) that the stack's chart expects installed before it.
package kubetest

import (
	"context"
	_ "embed"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/provenance"
	"helm.sh/helm/v3/pkg/repo"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/crawlctl/crawlctl/internal/testenv"
)

// kedaCRD stands in for the ScaledObject CRD KEDA's official chart
// installs.
//
//go:embed keda-scaledobject-crd.yaml
var kedaCRD []byte

// kedaAPIService stands in for the external metrics APIService KEDA's
// metrics server registers. It names no Service, so the API server treats
// it as local and reports it Available at once; there is no metrics server
// to back it here.
const kedaAPIService = `apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.external.metrics.k8s.io
spec:
  group: external.metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
`

// KEDAChartRepo serves, on loopback, a Helm chart repository holding a
// stand-in for KEDA's official chart (which cannot be downloaded here):
// chart keda at version, with KEDA's ScaledObject CRD and its external
// metrics APIService. It returns the repository's URL.
func KEDAChartRepo(t testing.TB, version string) string {
	t.Helper()
	ch, err := loader.LoadFiles([]*loader.BufferedFile{
		{Name: "Chart.yaml", Data: []byte("apiVersion: v2\nname: keda\nversion: " + version + "\ndescription: stands in for KEDA's official chart in tests\n")},
		{Name: "values.yaml", Data: []byte("resources: {}\n")},
		{Name: "crds/scaledobjects.yaml", Data: kedaCRD},
		{Name: "templates/apiservice.yaml", Data: []byte(kedaAPIService)},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tgz, err := chartutil.Save(ch, dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	digest, err := provenance.DigestFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	idx := repo.NewIndexFile()
	if err := idx.MustAdd(ch.Metadata, filepath.Base(tgz), url, digest); err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return url
}

var (
	crds          = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	apiServices   = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	ScaledObjects = schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}
)

// Clients are a typed and a dynamic client of one cluster.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// Connect builds the clients of kubeconfig.
func Connect(t testing.TB, kubeconfig string) Clients {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return Clients{Kube: kubernetes.NewForConfigOrDie(rc), Dynamic: dynamic.NewForConfigOrDie(rc)}
}

// InstallKEDACRD creates KEDA's ScaledObject CRD and its external metrics
// APIService, as KEDA's chart would, and waits until the API server serves
// ScaledObjects and its discovery lists them.
func InstallKEDACRD(t testing.TB, c Clients) {
	t.Helper()
	ctx := context.Background()
	for _, o := range []struct {
		gvr  schema.GroupVersionResource
		yaml []byte
	}{{crds, kedaCRD}, {apiServices, []byte(kedaAPIService)}} {
		var obj map[string]any
		if err := yaml.Unmarshal(o.yaml, &obj); err != nil {
			t.Fatal(err)
		}
		_, err := c.Dynamic.Resource(o.gvr).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	// The CRD's handler serves lists before discovery names the kind,
	// and the provider asks discovery: wait for both.
	testenv.Eventually(t, 30*time.Second, "the ScaledObject CRD served and in discovery", func() bool {
		if _, err := c.Dynamic.Resource(ScaledObjects).Namespace("default").List(ctx, metav1.ListOptions{}); err != nil {
			return false
		}
		res, err := c.Kube.Discovery().ServerResourcesForGroupVersion(ScaledObjects.GroupVersion().String())
		if err != nil {
			return false
		}
		for _, r := range res.APIResources {
			if r.Kind == "ScaledObject" {
				return apiServiceAvailable(ctx, c, "v1beta1.external.metrics.k8s.io")
			}
		}
		return false
	})
}

// apiServiceAvailable says whether the APIService name reports Available.
func apiServiceAvailable(ctx context.Context, c Clients, name string) bool {
	o, err := c.Dynamic.Resource(apiServices).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, cond := range conds {
		if m, ok := cond.(map[string]any); ok && m["type"] == "Available" {
			return m["status"] == "True"
		}
	}
	return false
}
