package api_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crawlctl/crawlctl/pkg/runtime/api"
)

func TestReadSeedFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rng := rand.New(rand.NewPCG(1, 2))
	junk := make([]byte, 2000)
	for i := range junk {
		junk[i] = byte(rng.UintN(256))
	}
	var lines []string
	for range 2600 {
		lines = append(lines, "subject "+strings.Repeat("x", 442)) // 450 bytes
	}
	big := filepath.Join(dir, "big.txt")
	f, _ := os.Create(big)
	f.Truncate(50 << 20) // 50 MB, refused before it is read
	f.Close()
	tooMany := strings.Repeat("OL1A\n", api.MaxSeeds+1)
	// The most a seed within the limits takes, JSON-quoted.
	worst := strings.Repeat(strings.Repeat(`"\<>&`, api.MaxSeedLength/5)+"\n", api.MaxSeeds)

	for _, tc := range []struct {
		name, path string
		seeds      int
		errHas     []string
	}{
		{"seeds and comments", write("ok.txt", "# poets\nOL9388A\n\n  /subjects/love  \n"), 2, nil},
		{"a JSON list", write("ok.json", `["OL9388A", "OL17732W"]`), 2, nil},
		{"random bytes", write("junk.bin", "OL9388A\n"+string(junk)), 0, []string{"line 2", "not text"}},
		{"a line over 64 KiB", write("long.txt", "OL9388A\n"+strings.Repeat("a", 70<<10)+"\n"), 0, []string{"line 2", "over the 500-byte limit"}},
		{"a 50 MB file", big, 0, []string{"over the", "byte limit", "split it"}},
		{"documented limits: 2,600 seeds of 450 bytes", write("many.txt", strings.Join(lines, "\n")), 2600, nil},
		{"the limits, every byte one that JSON escapes", write("worst.txt", worst), api.MaxSeeds, nil},
		{"more seeds than a run takes", write("toomany.txt", tooMany), 0, []string{"10001 seeds", "limit of 10000"}},
		{"a JSON item that is not text", write("bad.json", `["OL9388A", "a\u0000b"]`), 0, []string{"item 2", "not text"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seeds, err := api.ReadSeedFile(tc.path)
			if len(tc.errHas) == 0 {
				if err != nil || len(seeds) != tc.seeds {
					t.Fatalf("%d seeds, %v; want %d", len(seeds), err, tc.seeds)
				}
				// What the CLI accepts, the API's body limit takes.
				if b, _ := api.EncodeRunRequest(api.RunRequest{Seeds: seeds}); len(b) > api.MaxBodyBytes {
					t.Errorf("the request is %d bytes, over the API's %d", len(b), api.MaxBodyBytes)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %d seeds", len(seeds))
			}
			for _, want := range tc.errHas {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if len(err.Error()) > 400 {
				t.Errorf("the error quotes too much (%d bytes): %.200s…", len(err.Error()), err)
			}
		})
	}
}
