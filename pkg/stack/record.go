package stack

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// recordFile is the record's name in the stack's state directory.
const recordFile = "kube.json"

// Record is where a stack was installed in a cluster (by the kube or the
// kind provider). `crawlctl up` keeps it in the stack's state directory so
// that status, seed, collect and down find the cluster again without the
// flags.
type Record struct {
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

// Unreachable says what to do when the recorded stack's API or Prometheus
// does not answer.
func (r *Record) Unreachable() string {
	if r.PortForward {
		return fmt.Sprintf("the stack runs in the cluster at %s: is the port-forward running? %s", r.Server, PortForwards(r.Namespace))
	}
	return fmt.Sprintf("the stack runs in the cluster at %s: crawlctl status shows whether its pods are ready", r.Server)
}

// WriteRecord keeps r in dir.
func WriteRecord(dir string, r Record) error {
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

// ReadRecord reads the record in dir; nil and no error when there is none.
func ReadRecord(dir string) (*Record, error) {
	b, err := os.ReadFile(filepath.Join(dir, recordFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s is damaged (%w): delete it (the release stays installed: `helm uninstall` removes it)", filepath.Join(dir, recordFile), err)
	}
	return &r, nil
}

// RemoveRecord deletes the record in dir, if any.
func RemoveRecord(dir string) error {
	if err := os.Remove(filepath.Join(dir, recordFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
