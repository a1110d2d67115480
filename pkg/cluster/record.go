package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// recordFile is the record's name in the stack's state directory.
const recordFile = "kube.json"

// KubeRecord is where a stack was installed by the kube provider. `crawlctl
// up --provider kube` keeps it in the stack's state directory so that status
// and down find the cluster again without the flags.
type KubeRecord struct {
	Kubeconfig string `json:"kubeconfig,omitempty"`
	Context    string `json:"context,omitempty"`
	Namespace  string `json:"namespace"`
	Release    string `json:"release"`
	Server     string `json:"server"`
	// Provider is kube, or kind for a kind cluster crawlctl created.
	Provider string `json:"provider"`
	// Endpoints are the stack's addresses from this host: kind's host
	// ports, or for another cluster the local ends of the port-forwards
	// PortForwards names.
	Endpoints   Endpoints `json:"endpoints"`
	PortForward bool      `json:"portForward,omitempty"`
}

// PortForwards are the kubectl commands that make a cluster's stack
// answer on the same local ports as kind's (the charts' Services: api on
// 8080, prometheus on 9090, grid on 8080).
func PortForwards(namespace string) string {
	return fmt.Sprintf("kubectl -n %[1]s port-forward svc/api 8088:8080 & kubectl -n %[1]s port-forward svc/prometheus 9090:9090 & "+
		"kubectl -n %[1]s port-forward svc/grid 8080:8080", namespace)
}

// Unreachable says what to do when the recorded stack's API or Prometheus
// does not answer.
func (r *KubeRecord) Unreachable() string {
	if r.PortForward {
		return fmt.Sprintf("the stack runs in the cluster at %s: is the port-forward running? %s", r.Server, PortForwards(r.Namespace))
	}
	return fmt.Sprintf("the stack runs in the cluster at %s: crawlctl status shows whether its pods are ready", r.Server)
}

// WriteKubeRecord keeps r in dir.
func WriteKubeRecord(dir string, r KubeRecord) error {
	if r.Kubeconfig != "" {
		abs, err := filepath.Abs(r.Kubeconfig)
		if err != nil {
			return err
		}
		r.Kubeconfig = abs
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the state directory %s: %w", dir, err)
	}
	return os.WriteFile(filepath.Join(dir, recordFile), append(b, '\n'), 0o644)
}

// ReadKubeRecord reads the record in dir; nil and no error when there is none.
func ReadKubeRecord(dir string) (*KubeRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, recordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r KubeRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s is damaged (%w): delete it (the release stays installed: `helm uninstall` removes it)", filepath.Join(dir, recordFile), err)
	}
	return &r, nil
}

// RemoveKubeRecord deletes the record in dir, if any.
func RemoveKubeRecord(dir string) error {
	if err := os.Remove(filepath.Join(dir, recordFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
