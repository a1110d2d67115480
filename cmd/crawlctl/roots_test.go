package main

import (
	"crypto/x509"
	"os"
	"os/exec"
	"testing"
)

// TestFallbackRoots: a process where the host's roots are not used
// (GODEBUG=x509usefallbackroots=1, as on a FROM-scratch image, which has
// none) verifies with Mozilla's roots once useFallbackRoots has run, and
// with no roots before.
func TestFallbackRoots(t *testing.T) {
	if os.Getenv("CRAWLCTL_ROOTS_CHILD") != "" {
		if os.Getenv("CRAWLCTL_ROOTS_CHILD") == "use" {
			useFallbackRoots()
			useFallbackRoots() // once: a second call would panic in x509
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			t.Fatal(err)
		}
		//lint:ignore SA1019 a pool built from certificates lists its subjects
		if n := len(pool.Subjects()); n < 100 {
			t.Fatalf("%d roots", n)
		}
		return
	}
	for _, tc := range []struct {
		child string
		ok    bool
	}{{"use", true}, {"none", false}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFallbackRoots$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CRAWLCTL_ROOTS_CHILD="+tc.child, "GODEBUG=x509usefallbackroots=1",
			"SSL_CERT_FILE=/nonexistent", "SSL_CERT_DIR=/nonexistent")
		out, err := cmd.CombinedOutput()
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v\n%s", tc.child, err, tc.ok, out)
		}
	}
}
