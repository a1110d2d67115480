package exepages

import (
	"encoding/json"
	"encoding/xml"
	"math/big"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"
)

// residentKiB sums the resident pages of this test binary's read-only
// mappings.
func residentKiB(t *testing.T) int64 {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	maps, err := readMappings(exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) < 2 {
		t.Fatalf("found %d mappings of %s in /proc/self/smaps, want the text and read-only data at least", len(maps), exe)
	}
	var kib int64
	for _, m := range maps {
		if m.perms[1] == '-' {
			kib += m.rssKiB
		}
	}
	return kib
}

// warm runs code of several packages, as a crawlctl runtime's start does
// for every package linked into it.
func warm(t *testing.T) {
	t.Helper()
	var sb strings.Builder
	tpl := template.Must(template.New("t").Parse(`{{range .}}{{.Name | printf "%q"}},{{end}}`))
	if err := tpl.Execute(&sb, []struct{ Name string }{{"a"}, {"b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := json.Marshal(map[string]any{"v": 1, "s": sb.String(), "f": new(big.Float).SetPrec(200).Quo(big.NewFloat(1), big.NewFloat(3))}); err != nil {
		t.Fatal(err)
	}
	if _, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/x?y=z", nil); err != nil {
		t.Fatal(err)
	}
	type doc struct{ A, B string }
	if _, err := xml.Marshal(doc{"a", "b"}); err != nil {
		t.Fatal(err)
	}
}

func TestReleaseGivesBackPagesAndCodeStillRuns(t *testing.T) {
	warm(t)
	before := residentKiB(t)
	st, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	after := residentKiB(t)
	t.Logf("released %d mappings holding %d KiB; read-only pages resident: %d KiB before, %d KiB after", st.Mappings, st.Bytes>>10, before, after)
	if st.Mappings < 2 || st.Bytes < 1<<20 {
		t.Errorf("Release gave back %d mappings, %d bytes; want the text and read-only data, over 1 MiB", st.Mappings, st.Bytes)
	}
	if after > before*3/4 {
		t.Errorf("read-only pages resident after Release: %d KiB, want under 3/4 of the %d KiB before", after, before)
	}
	// Code and tables the process has not touched since come back from
	// the file intact.
	re := regexp.MustCompile(`^(\w+)-(\d+)$`)
	if m := re.FindStringSubmatch("exe-42"); !slices.Equal(m, []string{"exe-42", "exe", "42"}) {
		t.Errorf("regexp after Release = %q", m)
	}
	if got := strings.ToUpper("données"); got != "DONNÉES" {
		t.Errorf("unicode tables after Release: %q", got)
	}
}

func TestReleasableSkipsWrittenAndWritableMappings(t *testing.T) {
	for _, tc := range []struct {
		m    mapping
		want bool
	}{
		{mapping{perms: "r-xp", rssKiB: 100}, true},
		{mapping{perms: "r--p", rssKiB: 100}, true},
		{mapping{perms: "r--p", rssKiB: 100, anon: 4}, false}, // relocated data: written copies
		{mapping{perms: "rw-p", rssKiB: 100}, false},
		{mapping{perms: "r--s", rssKiB: 100}, false},
		{mapping{perms: "r--p"}, false}, // nothing resident
	} {
		if got := tc.m.releasable(); got != tc.want {
			t.Errorf("%+v releasable = %v, want %v", tc.m, got, tc.want)
		}
	}
}
