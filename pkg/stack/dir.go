package stack

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/crawlctl/crawlctl/pkg/config"
)

// Dir is the state directory of stack name: $XDG_STATE_HOME/crawlctl/<name>,
// else ~/.local/state/crawlctl/<name>. The name must be a valid stack name
// (config.ValidateName), so the directory is always one entry of Root.
func Dir(name string) (string, error) {
	if err := config.ValidateName(name); err != nil {
		return "", &UsageError{err}
	}
	root, err := Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, name), nil
}

// Root is the directory every stack's state directory is in.
func Root() (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the state directory: %w (set XDG_STATE_HOME)", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	abs, err := filepath.Abs(filepath.Join(base, "crawlctl"))
	if err != nil {
		return "", fmt.Errorf("finding the state directory: %w", err)
	}
	return abs, nil
}

// OwnDir checks that dir is one stack's directory: a valid stack name
// directly under Root. Nothing outside it is ever deleted.
func OwnDir(dir string) error {
	root, err := Root()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if filepath.Dir(abs) != root || config.ValidateName(filepath.Base(abs)) != nil {
		return fmt.Errorf("%s is not a stack's state directory (one entry of %s): not deleting it", dir, root)
	}
	return nil
}

// Purge deletes dir, a stack's state directory (OwnDir checks it first),
// and says so on p.
func Purge(dir string, p Printer) error {
	if err := OwnDir(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("deleting %s: %w", dir, err)
	}
	p.Detail("deleted %s", dir)
	return nil
}
