// Package kubetest holds what tests against a real kube-apiserver
// (testenv.KubeAPIServer) need besides the server: clients and the CRDs of
// what the stack's chart expects installed before it.
package kubetest

import (
	"context"
	_ "embed"
	"testing"
	"time"

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

var (
	crds          = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
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

// InstallKEDACRD creates KEDA's ScaledObject CRD, as KEDA's chart would,
// and waits until the API server serves ScaledObjects.
func InstallKEDACRD(t testing.TB, c Clients) {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal(kedaCRD, &obj); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err := c.Dynamic.Resource(crds).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the ScaledObject CRD served", func() bool {
		_, err := c.Dynamic.Resource(ScaledObjects).Namespace("default").List(ctx, metav1.ListOptions{})
		return err == nil
	})
}
