package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestWrite: the archive has the manifest, the config whose diff_ids are
// the layers' sha256, and each layer holds the directory's files.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "bin", "tool"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("tool", filepath.Join(dir, "bin", "alias"))
	out := filepath.Join(t.TempDir(), "img.tar")
	if err := Write(out, Options{Tags: []string{"example/tool:1"}, Layers: []string{dir}, Entrypoint: []string{"/bin/tool"}, StopSignal: "SIGRTMIN+3"}); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	f, _ := os.Open(out)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 || manifest[0].RepoTags[0] != "example/tool:1" {
		t.Fatalf("manifest %s (%v)", files["manifest.json"], err)
	}
	var config struct {
		Config struct {
			Entrypoint []string
			StopSignal string
		} `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(files[manifest[0].Config], &config); err != nil {
		t.Fatal(err)
	}
	layer := files[manifest[0].Layers[0]]
	sum := sha256.Sum256(layer)
	if config.RootFS.DiffIDs[0] != "sha256:"+hex.EncodeToString(sum[:]) || config.Config.StopSignal != "SIGRTMIN+3" || config.Config.Entrypoint[0] != "/bin/tool" {
		t.Errorf("config %s", files[manifest[0].Config])
	}
	got := map[string]*tar.Header{}
	lr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
	}
	if h := got["bin/tool"]; h == nil || h.Mode&0o111 == 0 || h.ModTime.Unix() != 0 {
		t.Errorf("bin/tool: %+v", h)
	}
	if h := got["bin/alias"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "tool" {
		t.Errorf("bin/alias: %+v", h)
	}
}
