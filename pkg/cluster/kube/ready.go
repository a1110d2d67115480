package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/crawlctl/crawlctl/pkg/stack"
)

// WaitReady waits up to timeout until every node is Ready and CoreDNS has
// a ready replica: kind's own wait only warns when it times out.
func (p *Provider) WaitReady(ctx context.Context, timeout time.Duration) error {
	kc, server, err := p.clientset()
	if err != nil {
		return err
	}
	said := ""
	err = waitFor(ctx, timeout, func() error {
		if why := notReady(ctx, kc); why != "" {
			if why != said { // each reason once
				p.print.Detail("waiting for the cluster: %s", why)
				said = why
			}
			return errors.New(why)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("the cluster at %s is not ready %w", server, err)
	}
	return nil
}

// notReady says what keeps the cluster from being ready; "" when nothing.
func notReady(ctx context.Context, kc kubernetes.Interface) string {
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "listing nodes: " + err.Error()
	}
	if len(nodes.Items) == 0 {
		return "no node has registered"
	}
	for _, n := range nodes.Items {
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if ready = c.Status == corev1.ConditionTrue; !ready {
					return fmt.Sprintf("node %s is not Ready (%s: %s)", n.Name, c.Reason, c.Message)
				}
			}
		}
		if !ready {
			return fmt.Sprintf("node %s reports no Ready condition yet", n.Name)
		}
	}
	dns, err := kc.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return "CoreDNS: " + err.Error()
	}
	if dns.Status.ReadyReplicas < 1 {
		return "CoreDNS has no ready replica (kubectl -n kube-system get pods -l k8s-app=kube-dns)"
	}
	return ""
}

// Allocatable sums the allocatable memory and CPU of the nodes pods can be
// scheduled on (cordoned nodes left out), for sizing the budget from the
// cluster.
func (p *Provider) Allocatable(ctx context.Context) (stack.Capacity, error) {
	kc, server, err := p.clientset()
	if err != nil {
		return stack.Capacity{}, err
	}
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return stack.Capacity{}, fmt.Errorf("listing the nodes of %s: %w", server, err)
	}
	var c stack.Capacity
	for _, n := range nodes.Items {
		if n.Spec.Unschedulable {
			continue
		}
		c.Nodes++
		c.MemoryMi += n.Status.Allocatable.Memory().Value() >> 20
		c.CPUm += n.Status.Allocatable.Cpu().MilliValue()
	}
	if c.Nodes == 0 {
		return c, fmt.Errorf("the cluster at %s has no schedulable node to size the stack from: give --node-memory and --node-cpu instead", server)
	}
	return c, nil
}

// Node is one node of the cluster, for status.
type Node struct {
	Name          string `json:"name"`
	Ready         bool   `json:"ready"`
	AllocatableMi int64  `json:"allocatableMemoryMi"`
	CapacityMi    int64  `json:"capacityMemoryMi"`
}

// Nodes lists the cluster's nodes.
func (p *Provider) Nodes(ctx context.Context) ([]Node, error) {
	kc, server, err := p.clientset()
	if err != nil {
		return nil, err
	}
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the nodes of %s: %w", server, err)
	}
	var out []Node
	for _, n := range nodes.Items {
		x := Node{Name: n.Name, AllocatableMi: n.Status.Allocatable.Memory().Value() >> 20, CapacityMi: n.Status.Capacity.Memory().Value() >> 20}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				x.Ready = c.Status == corev1.ConditionTrue
			}
		}
		out = append(out, x)
	}
	return out, nil
}

// RecordCluster records where the stack's cluster is (before anything is
// installed in it), so status, seed, collect and down find it.
func (p *Provider) RecordCluster() (string, error) {
	_, server, err := p.clientset()
	if err != nil {
		return "", err
	}
	dir, err := stack.Dir(p.release)
	if err != nil {
		return "", err
	}
	if err := stack.WriteRecord(dir, p.record(server)); err != nil {
		return "", fmt.Errorf("recording where the stack is: %w", err)
	}
	return "in " + dir, nil
}
