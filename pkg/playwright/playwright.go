// Package playwright finds and installs what a Playwright browser server
// needs: Node.js, playwright-core at the pinned version, and a browser.
package playwright

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Version is the playwright-core the browser server runs; a
// Playwright client connecting through the grid should use the same
// version (Playwright refuses a server of another minor version).
const Version = "1.65.1"

// ImagePrefix is where the browser worker image installs playwright-core
// (npm --prefix), and where the chart points `crawlctl run browser`
// (--playwright-dir) in it.
const ImagePrefix = "/opt/crawlctl/playwright"

// ChromiumArgs are the flags the browser needs here: root in a container
// or CI machine has no sandbox, there is no GPU, and a closed network
// refuses Chromium's background requests by the dozen.
var ChromiumArgs = []string{"--no-sandbox", "--disable-gpu", "--disable-background-networking",
	"--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"}

// Runtime is what running a Playwright browser server takes: Node.js,
// playwright-core and a browser.
type Runtime struct {
	Node string
	// ModulesDir is the node_modules holding playwright-core.
	ModulesDir string
	// Executable is the browser's binary ("" lets Playwright use its own
	// download, as in the Playwright image).
	Executable string
}

// FindNode finds Node.js (18 or later is what playwright-core needs).
func FindNode() (string, error) {
	for _, name := range []string{"node", "nodejs"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("Node.js is not installed: the browser worker runs Playwright's browser server on it; " +
		"install it (Debian: apt-get install nodejs npm)")
}

// FindChromium finds a Chromium binary: explicit, else on PATH.
func FindChromium(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("--chromium %s: %w", explicit, err)
		}
		return explicit, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("Chromium is not installed: install it (Debian: apt-get install chromium) " +
		"or name a binary with --chromium")
}

// DefaultModulesDir is where crawlctl installs playwright-core:
// $XDG_CACHE_HOME/crawlctl/playwright-core@<version>.
func DefaultModulesDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory for playwright-core: %w", err)
	}
	return filepath.Join(dir, "crawlctl", "playwright-core@"+Version), nil
}

// Ensure installs playwright-core at Version into
// prefix (npm install --prefix) unless it is there already, and returns
// the node_modules directory.
func Ensure(ctx context.Context, prefix string, log *slog.Logger) (string, error) {
	modules := filepath.Join(prefix, "node_modules")
	if installedVersion(modules) == Version {
		return modules, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", errors.New("npm is not installed: the browser worker installs playwright-core with it; " +
			"install it (Debian: apt-get install npm) or install playwright-core@" + Version + " into " + prefix)
	}
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return "", err
	}
	log.Info("installing playwright-core", "version", Version, "prefix", prefix)
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", prefix, "--no-save", "--no-audit", "--no-fund",
		"--loglevel", "error", "playwright-core@"+Version)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm install playwright-core@%s into %s: %w\n%s", Version, prefix, err,
			strings.TrimSpace(out.String()))
	}
	if v := installedVersion(modules); v != Version {
		return "", fmt.Errorf("npm installed playwright-core %q into %s, want %s", v, prefix, Version)
	}
	return modules, nil
}

func installedVersion(modules string) string {
	b, err := os.ReadFile(filepath.Join(modules, "playwright-core", "package.json"))
	if err != nil {
		return ""
	}
	var pkg struct{ Version string }
	json.Unmarshal(b, &pkg)
	return pkg.Version
}

// Check says what is missing to run browser workers here (Node.js,
// Chromium, and npm unless playwright-core is installed already), without
// installing anything.
func Check(chromium string) error {
	var errs []error
	if _, err := FindNode(); err != nil {
		errs = append(errs, err)
	}
	if _, err := FindChromium(chromium); err != nil {
		errs = append(errs, err)
	}
	if dir, err := DefaultModulesDir(); err != nil || installedVersion(filepath.Join(dir, "node_modules")) != Version {
		if _, err := exec.LookPath("npm"); err != nil {
			errs = append(errs, errors.New("npm is not installed: playwright-core@"+Version+" is installed with it (Debian: apt-get install npm)"))
		}
	}
	return errors.Join(errs...)
}

// PrepareRuntime finds Node.js and the browser and makes sure
// playwright-core is installed: everything a browser worker needs before
// it starts, with one clear error naming what is missing.
func PrepareRuntime(ctx context.Context, browser, chromium, modulesPrefix string, log *slog.Logger) (Runtime, error) {
	var rt Runtime
	var err error
	if rt.Node, err = FindNode(); err != nil {
		return rt, err
	}
	if browser == "chromium" {
		if rt.Executable, err = FindChromium(chromium); err != nil {
			return rt, err
		}
	}
	if modulesPrefix == "" {
		if modulesPrefix, err = DefaultModulesDir(); err != nil {
			return rt, err
		}
	}
	rt.ModulesDir, err = Ensure(ctx, modulesPrefix, log)
	return rt, err
}
