package experiment

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/crawlctl/crawlctl/pkg/budget"
)

func TestParse(t *testing.T) {
	f, err := Parse(filepath.Join("testdata", "good.yaml"), budget.DefaultInput())
	if err != nil {
		t.Fatal(err)
	}
	if f.runs() != 4 || len(f.seeds) != 3 || *f.MaxDepth != 1 || f.Scenarios[1].plan.Proxies != 3 || f.Scenarios[0].ProxyAssignment != "pace" {
		t.Errorf("parsed %+v", f)
	}
	for _, tc := range []struct {
		file string
		want []string // in the error
	}{
		{"unknown_key.yaml", []string{"line 5", "proxys"}},
		{"bad_proxies.yaml", []string{"bad_proxies.yaml:5", `scenario "none"`, "proxies -2"}},
		{"too_big.yaml", []string{"too_big.yaml:5", `scenario "fifty"`, "does not fit the budget"}},
		{"dup.yaml", []string{"dup.yaml:5", "taken by an earlier scenario"}},
		{"bad_assignment.yaml", []string{"bad_assignment.yaml:4", "proxyAssignment", "random"}},
		{"seeds.yaml", []string{"seeds.yaml:2", "seeds: 21", "give 1 to 20"}},
		{"bad_name.yaml", []string{"bad_name.yaml:1", "folder name"}},
		{"bad_duration.yaml", []string{"line 3", "soon", "positive duration"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := Parse(filepath.Join("testdata", tc.file), budget.DefaultInput())
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
