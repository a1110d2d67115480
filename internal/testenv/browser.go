package testenv

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/pkg/playwright"
)

// Playwright makes sure Node.js, Chromium and playwright-core (the
// version the browser worker runs, installed once into the user cache
// dir) are here, and returns playwright-core's prefix directory; its
// node_modules serve both browser workers and test clients.
func Playwright(t testing.TB) string {
	t.Helper()
	Require(t, "node", "nodejs")
	Require(t, "chromium")
	Require(t, "npm")
	dir, err := playwright.DefaultModulesDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := playwright.Ensure(ctx, dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return dir
}
