package kube

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/crawlctl/crawlctl/pkg/deploy"
	"github.com/crawlctl/crawlctl/pkg/stack"
)

// Down uninstalls the stack and forgets its record (o.Purge: its whole
// state directory); a stack that is not installed is not an error. It
// reports whether there was one.
func (p *Provider) Down(ctx context.Context, o stack.DownOptions) (bool, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultDownTimeout
	}
	dir, err := stack.Dir(p.release)
	if err != nil {
		return false, err
	}
	if o.Purge {
		if err := stack.OwnDir(dir); err != nil {
			return false, err
		}
	}
	r, err := stack.ReadRecord(dir)
	if err != nil {
		return false, err
	}
	was, err := p.uninstall(o)
	if err != nil {
		return was, fmt.Errorf("%w (to forget this stack without uninstalling it, delete %s)", err, filepath.Join(dir, "kube.json"))
	}
	if err := stack.RemoveRecord(dir); err != nil {
		return was, err
	}
	if o.Purge {
		if err := stack.Purge(dir, p.print); err != nil {
			return was, err
		}
	}
	where := "the cluster"
	if r != nil {
		where = r.Server
	}
	if was {
		p.print.Print("✓ stack %q is uninstalled from %s", p.release, where)
	} else {
		p.print.Print("✓ stack %q was not installed in %s", p.release, where)
	}
	if r != nil && r.Provider == stack.Kind {
		p.print.Detail("the kind cluster stays: crawlctl down --provider kind deletes it")
	}
	return was, nil
}

// uninstall removes the release, if it is there.
func (p *Provider) uninstall(o stack.DownOptions) (bool, error) {
	d, err := deploy.NewDeployer(p.kubeconfig, p.context, p.namespace, p.log)
	if err != nil {
		return false, err
	}
	if _, err := d.Status(p.release); errors.Is(err, deploy.ErrNoRelease) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	p.print.Detail("uninstalling release %s from namespace %s", p.release, p.namespace)
	return true, d.Uninstall(p.release, o.Timeout)
}
