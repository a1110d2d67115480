package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// budgetBlock is a marker naming a crawlctl command line, and the text block
// after it that must hold that command's output.
var budgetBlock = regexp.MustCompile("(?s)<!-- budget: ([^>]*) -->\n```text\n(.*?)```")

// TestDocsBudgetTablesAreCurrent re-runs every command docs/budget.md shows
// and compares the output. UPDATE_DOCS=1 rewrites the blocks instead.
func TestDocsBudgetTablesAreCurrent(t *testing.T) {
	const path = "../../docs/budget.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := budgetBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 3 {
		t.Fatalf("docs/budget.md has %d budget blocks, want at least 3", len(blocks))
	}
	update := os.Getenv("UPDATE_DOCS") == "1"
	out := string(doc)
	for _, b := range blocks {
		r := invocation{args: strings.Fields(b[1])}.run(t)
		if r.code != 0 {
			t.Fatalf("crawlctl %s: exit %d: %s", b[1], r.code, r.errOut)
		}
		if update {
			out = strings.Replace(out, b[0], "<!-- budget: "+b[1]+" -->\n```text\n$ crawlctl "+b[1]+"\n"+r.out+"```", 1)
			continue
		}
		if want := "$ crawlctl " + b[1] + "\n" + r.out; b[2] != want {
			t.Errorf("docs/budget.md block for `crawlctl %s` is stale; run UPDATE_DOCS=1 go test ./cmd/crawlctl -run Docs\nhave:\n%s\nwant:\n%s", b[1], b[2], want)
		}
	}
	if update {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
