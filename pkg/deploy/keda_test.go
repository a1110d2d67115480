package deploy

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRepo: a repository directory is served on loopback for the
// install, and a directory that is not one is refused with its path.
func TestServeRepo(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := serveRepo(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("a directory without index.yaml: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "index.yaml"), []byte("apiVersion: v1\nentries: {}\n"), 0o644)
	url, stop, err := serveRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("served at %s, want loopback", url)
	}
	resp, err := http.Get(url + "/index.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "entries") {
		t.Errorf("index.yaml served as %q", b)
	}
	stop()
	if _, err := http.Get(url + "/index.yaml"); err == nil {
		t.Error("still served after stop")
	}
}
