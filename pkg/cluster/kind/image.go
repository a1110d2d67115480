package kind

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/crawlctl/crawlctl/pkg/playwright"
)

// Images is the part of the Docker API that builds, inspects and saves
// images (the moby client has it).
type Images interface {
	ImageBuild(ctx context.Context, buildContext io.Reader, o client.ImageBuildOptions) (client.ImageBuildResult, error)
	ImageInspect(ctx context.Context, image string, o ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageSave(ctx context.Context, images []string, o ...client.ImageSaveOption) (client.ImageSaveResult, error)
}

// runtimeDockerfile is the runtime image: the static binary alone, run as
// a non-root user; no base image to pull.
const runtimeDockerfile = `FROM scratch
COPY crawlctl /crawlctl
USER 65532:65532
ENTRYPOINT ["/crawlctl"]
`

// browserDockerfile is the browser worker's image: the binary on the
// official Playwright image of the pinned playwright-core (Node.js and
// Playwright's browsers), with playwright-core installed where the chart
// points `crawlctl run browser` (playwright.ImagePrefix) and Playwright's
// Chromium on PATH as chromium.
var browserDockerfile = `FROM mcr.microsoft.com/playwright:v` + playwright.Version + `-noble
RUN npm install --prefix ` + playwright.ImagePrefix + ` --no-save --no-audit --no-fund playwright-core@` + playwright.Version + ` \
 && ln -s "$(ls -d /ms-playwright/chromium-*/chrome-linux*/chrome | head -n 1)" /usr/local/bin/chromium \
 && chromium --version
COPY crawlctl /usr/local/bin/crawlctl
ENTRYPOINT ["/usr/local/bin/crawlctl"]
`

// RuntimeImageTag names the runtime image of the binary at bin by its
// content, so a rebuilt binary gets a new image and an unchanged one is
// not built again.
func RuntimeImageTag(bin string) (string, error) { return imageTag("crawlctl-runtime", bin) }

// BrowserImageTag names the browser worker image of the binary at bin on
// base (empty: the official Playwright image).
func BrowserImageTag(bin, base string) (string, error) {
	return imageTag("crawlctl-browser\n"+base, bin)
}

func imageTag(repo, bin string) (string, error) {
	f, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	io.WriteString(h, repo+"\n"+playwright.Version+"\n")
	repo, _, _ = strings.Cut(repo, "\n") // a base is in the hash, not the name
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", bin, err)
	}
	return repo + ":" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// BuildRuntimeImage builds image tag FROM scratch with the binary at bin
// as /crawlctl, unless the daemon has tag already; it reports whether it
// built. The binary must be static (CGO_ENABLED=0): nothing else is in the
// image.
func BuildRuntimeImage(ctx context.Context, d Images, bin, tag string) (bool, error) {
	return buildImage(ctx, d, bin, tag, runtimeDockerfile)
}

// BuildBrowserImage builds the browser worker image tag: the static binary
// on the Playwright image (which Docker pulls), or on base when given
// (which has Chromium and playwright-core already), unless the daemon has
// tag already; it reports whether it built.
func BuildBrowserImage(ctx context.Context, d Images, bin, tag, base string) (bool, error) {
	df := browserDockerfile
	if base != "" {
		df = "FROM " + base + "\nCOPY crawlctl /usr/local/bin/crawlctl\nENTRYPOINT [\"/usr/local/bin/crawlctl\"]\n"
	}
	return buildImage(ctx, d, bin, tag, df)
}

func buildImage(ctx context.Context, d Images, bin, tag, dockerfile string) (bool, error) {
	if err := requireStatic(bin); err != nil {
		return false, err
	}
	if _, err := d.ImageInspect(ctx, tag); err == nil {
		return false, nil
	} else if !cerrdefs.IsNotFound(err) {
		return false, fmt.Errorf("looking for image %s: %w", tag, err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeBuildContext(pw, bin, dockerfile)) }()
	defer pr.Close()
	res, err := d.ImageBuild(ctx, pr, client.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true, Dockerfile: "Dockerfile"})
	if err != nil {
		return false, fmt.Errorf("building image %s: %w", tag, err)
	}
	defer res.Body.Close()
	if err := readBuildStream(res.Body); err != nil {
		return false, fmt.Errorf("building image %s: %w", tag, err)
	}
	return true, nil
}

// requireStatic refuses a dynamically linked binary, which cannot run
// FROM scratch.
func requireStatic(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("%s is not a Linux executable (%v): the runtime image needs a linux/%s crawlctl", bin, err, runtime.GOARCH)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked, and the runtime image has nothing but the binary: build it with CGO_ENABLED=0", bin)
		}
	}
	return nil
}

// writeBuildContext writes the build context, the Dockerfile and the
// binary, as a tar stream.
func writeBuildContext(w io.Writer, bin, dockerfile string) error {
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))}); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, dockerfile); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "crawlctl", Mode: 0o755, Size: st.Size()}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return err
	}
	return tw.Close()
}

// readBuildStream reads the daemon's build messages to the end and
// returns the error one reports.
func readBuildStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading the build's output: %w", err)
		}
		if m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}

// LoadImage loads image tag from the daemon into node, unless the node has
// that image already: a save streamed into the node's
// containerd (kind's nodeutils), without the kind binary. It reports
// whether it loaded.
func LoadImage(ctx context.Context, d Images, node nodes.Node, tag string) (bool, error) {
	img, err := d.ImageInspect(ctx, tag)
	if err != nil {
		return false, fmt.Errorf("looking for image %s: %w", tag, err)
	}
	if id, err := nodeutils.ImageID(node, tag); err == nil && id == img.ID {
		return false, nil
	}
	// The images crawlctl builds have one platform, the daemon's: no
	// platform option, which daemons before API 1.48 (Docker 28) refuse.
	rc, err := d.ImageSave(ctx, []string{tag})
	if err != nil {
		return false, fmt.Errorf("saving image %s: %w", tag, err)
	}
	defer rc.Close()
	if err := nodeutils.LoadImageArchive(node, rc); err != nil {
		return false, fmt.Errorf("loading image %s into node %s: %w", tag, node, err)
	}
	return true, nil
}

// RuntimeBinaryName is the runtime build's file name next to crawlctl
// (go build -tags crawlctl_runtime -o crawlctl-runtime ./cmd/crawlctl).
const RuntimeBinaryName = "crawlctl-runtime"

// FindRuntimeBinary picks the binary the runtime image is built from:
// explicit when given, else a runtime build next to the running crawlctl,
// else the running crawlctl itself, in which case self is true (the full
// build, which costs every pod memory: docs/kind.md).
func FindRuntimeBinary(explicit string) (path string, self bool, err error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", false, fmt.Errorf("--runtime-binary: %w", err)
		}
		return explicit, false, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", false, fmt.Errorf("finding the running crawlctl: %w", err)
	}
	beside := filepath.Join(filepath.Dir(exe), RuntimeBinaryName)
	if _, err := os.Stat(beside); err == nil {
		return beside, false, nil
	}
	return exe, true, nil
}
