package testenv

import (
	"io/fs"
	"path/filepath"
	"testing"
)

// DirSizes lists the files under dir with their sizes: two listings are
// equal when nothing was added, removed, grown or shrunk.
func DirSizes(t testing.TB, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			out[path] = fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
