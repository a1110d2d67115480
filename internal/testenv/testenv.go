// Package testenv starts the real servers crawlctl's tests talk to — a
// Kafka-protocol broker (franz-go kfake, over TCP), redis-server, PostgreSQL —
// on loopback, and stops them when the test ends. scripts/test.sh installs
// the Debian packages; outside CI a missing one skips the test, in CI
// (CI=true) it fails it.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Require finds a program, or skips (fails in CI) the test without it.
func Require(t testing.TB, name string, candidates ...string) string {
	t.Helper()
	for _, c := range append(candidates, name) {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	Missing(t, fmt.Sprintf("%s is not installed (scripts/test.sh installs it)", name))
	return ""
}

// RequireEnv returns the values of the environment variables keys, or
// skips (fails in CI) the test when one is unset; setter says what sets
// them.
func RequireEnv(t testing.TB, setter string, keys ...string) map[string]string {
	t.Helper()
	env := make(map[string]string, len(keys))
	for _, k := range keys {
		if env[k] = os.Getenv(k); env[k] == "" {
			Missing(t, fmt.Sprintf("%s is not set: %s", k, setter))
		}
	}
	return env
}

// Missing skips the test for want of msg's prerequisite, or fails it in
// CI, where scripts/test.sh provides every prerequisite and a skip would
// hide that it did not.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Kafka starts an in-process Kafka-protocol cluster listening on loopback
// and returns its seed brokers. Topics are not auto-created: crawlctl
// creates its own.
func Kafka(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// KafkaClient is a plain client of brokers for assertions.
func KafkaClient(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Redis starts a redis-server on a loopback port with persistence off and
// returns its address.
func Redis(t testing.TB) string {
	t.Helper()
	bin := Require(t, "redis-server")
	port := FreePort(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server on %s did not answer: %v\n%s", addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
