package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRewriteDropsMissingCapabilities(t *testing.T) {
	allowed := fromMask(^uint64(0) &^ (1 << 24)) // all but CAP_SYS_RESOURCE
	spec := `{"ociVersion":"1.0.2","process":{"args":["/sbin/init"],"capabilities":{"bounding":["CAP_SYS_ADMIN","CAP_SYS_RESOURCE"],"effective":["CAP_SYS_RESOURCE","CAP_NET_ADMIN"]},"oomScoreAdj":-998},"root":{"path":"rootfs"}}`
	process := `{"args":["sh"],"capabilities":{"bounding":["CAP_SYS_RESOURCE","CAP_KILL"]}}`
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(spec), 0o600)
	proc := filepath.Join(dir, "process.json")
	os.WriteFile(proc, []byte(process), 0o600)

	for _, tc := range []struct {
		args []string
		file string
		path []string // to the capability sets
		want map[string][]string
	}{
		{[]string{"--root", "/run/runc", "--log", "x.log", "create", "--bundle", dir, "id"}, filepath.Join(dir, "config.json"),
			[]string{"process", "capabilities"}, map[string][]string{"bounding": {"CAP_SYS_ADMIN"}, "effective": {"CAP_NET_ADMIN"}}},
		{[]string{"exec", "--process=" + proc, "id"}, proc, []string{"capabilities"}, map[string][]string{"bounding": {"CAP_KILL"}}},
	} {
		if err := rewrite(tc.args, allowed, 0); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(tc.file)
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		m := doc
		for _, k := range tc.path {
			m = m[k].(map[string]any)
		}
		if p, ok := doc["process"].(map[string]any); ok && p["oomScoreAdj"] != float64(0) {
			t.Errorf("oomScoreAdj %v, want it raised to 0 (lowering needs CAP_SYS_RESOURCE)", p["oomScoreAdj"])
		}
		for set, want := range tc.want {
			var got []string
			for _, c := range m[set].([]any) {
				got = append(got, c.(string))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%v: %s = %v, want %v", tc.args, set, got, want)
			}
		}
	}
	// A full bounding set, or a command without a spec, changes nothing.
	before, _ := os.ReadFile(proc)
	if err := rewrite([]string{"state", "id"}, allowed, 0); err != nil {
		t.Fatal(err)
	}
	if err := rewrite([]string{"exec", "-p", proc, "id"}, fromMask(^uint64(0)), 0); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(proc); string(after) != string(before) {
		t.Error("the spec changed although nothing was missing")
	}
}
