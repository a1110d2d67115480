// Command mkimage writes a Docker image archive (what `docker save`
// writes, and `docker load` and `ctr images import` read) from
// directories, one layer each, with no daemon and no registry:
// scripts/kind-offline.sh builds the kind node image and the images in it
// with it. Layers are deterministic: entries sorted, owned by root, mtime
// zero.
//
//	mkimage -tag registry.k8s.io/pause:3.10 -layer dir -entrypoint /pause -o pause.tar
package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// Options are one image.
type Options struct {
	Tags, Layers, Env, Entrypoint, Cmd []string
	User, StopSignal, WorkDir          string
}

func main() {
	var o Options
	var tags, layers, env, entrypoint, cmd list
	flag.Var(&tags, "tag", "image name:tag (repeat)")
	flag.Var(&layers, "layer", "directory of one layer, bottom first (repeat)")
	flag.Var(&env, "env", "KEY=VALUE (repeat)")
	flag.Var(&entrypoint, "entrypoint", "entrypoint argument (repeat, in order)")
	flag.Var(&cmd, "cmd", "cmd argument (repeat, in order)")
	flag.StringVar(&o.User, "user", "", "user[:group]")
	flag.StringVar(&o.StopSignal, "stopsignal", "", "stop signal, e.g. SIGRTMIN+3")
	flag.StringVar(&o.WorkDir, "workdir", "", "working directory")
	out := flag.String("o", "", "archive to write")
	flag.Parse()
	o.Tags, o.Layers, o.Env, o.Entrypoint, o.Cmd = tags, layers, env, entrypoint, cmd
	if *out == "" || len(o.Tags) == 0 || len(o.Layers) == 0 {
		fmt.Fprintln(os.Stderr, "usage: mkimage -tag NAME:TAG -layer DIR [-layer DIR] [-entrypoint A] [-cmd A] [-env K=V] [-user U] [-stopsignal S] -o OUT.tar")
		os.Exit(2)
	}
	if err := Write(*out, o); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

// Write writes the archive of o to path.
func Write(path string, o Options) error {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".mkimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var diffIDs, layerFiles []string
	for i, dir := range o.Layers {
		name := fmt.Sprintf("layer%d.tar", i)
		sum, err := writeLayer(filepath.Join(tmp, name), dir)
		if err != nil {
			return fmt.Errorf("layer %s: %w", dir, err)
		}
		diffIDs, layerFiles = append(diffIDs, "sha256:"+sum), append(layerFiles, sum+"/layer.tar")
	}
	env := o.Env
	if !hasKey(env, "PATH") {
		env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	}
	config := map[string]any{
		"architecture": "amd64", "os": "linux", "created": time.Unix(0, 0).UTC().Format(time.RFC3339),
		"config": map[string]any{"Env": env, "Entrypoint": o.Entrypoint, "Cmd": o.Cmd, "User": o.User,
			"StopSignal": o.StopSignal, "WorkingDir": o.WorkDir},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	}
	cb, err := json.Marshal(config)
	if err != nil {
		return err
	}
	csum := sha256.Sum256(cb)
	configName := hex.EncodeToString(csum[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": o.Tags, "Layers": layerFiles}})
	if err != nil {
		return err
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	err = add(configName, cb)
	for i, lf := range layerFiles {
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: filepath.Dir(lf) + "/", Mode: 0o755, Typeflag: tar.TypeDir})
		}
		if err == nil {
			err = copyFile(tw, filepath.Join(tmp, fmt.Sprintf("layer%d.tar", i)), lf)
		}
	}
	if err == nil {
		err = add("manifest.json", manifest)
	}
	if err = errors.Join(err, tw.Close(), f.Close()); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

func hasKey(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

func copyFile(tw *tar.Writer, src, name string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// writeLayer tars dir into path (sorted, root-owned, mtime zero) and
// returns the tar's sha256.
func writeLayer(path, dir string) (string, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(paths)
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(f, h))
	links := map[[2]uint64]string{} // (dev, inode) → first name, for hard links
	for _, p := range paths {
		if err := addEntry(tw, dir, p, links); err != nil {
			f.Close()
			return "", fmt.Errorf("%s: %w", p, err)
		}
	}
	if err := errors.Join(tw.Close(), f.Close()); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
