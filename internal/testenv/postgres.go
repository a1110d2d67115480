package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// postgresBin finds Debian's PostgreSQL server binaries.
func postgresBin(t testing.TB) string {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1])
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	Require(t, "PostgreSQL (initdb)")
	return ""
}

// Postgres starts a throwaway PostgreSQL server on a loopback port and
// returns a DSN for its database. As root it runs as the postgres user
// (the server refuses root).
func Postgres(t testing.TB) string {
	t.Helper()
	return StartPostgres(t).DSN
}

// PostgresServer is a running test server that a test may stop and start
// again (an outage).
type PostgresServer struct {
	DSN   string
	t     testing.TB
	start func() *exec.Cmd
	cmd   *exec.Cmd
	done  chan struct{}
}

// Stop shuts the server down (fast shutdown) and waits for it.
func (p *PostgresServer) Stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// Start starts a stopped server on the same port and data.
func (p *PostgresServer) Start() {
	p.t.Helper()
	p.cmd = p.start()
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting postgres: %v", err)
	}
	p.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(p.cmd, p.done)
	db, err := sql.Open("pgx", p.DSN)
	if err != nil {
		p.t.Fatal(err)
	}
	defer db.Close()
	Eventually(p.t, 30*time.Second, "PostgreSQL to accept connections", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return db.PingContext(ctx) == nil
	})
}

// StartPostgres starts a server like Postgres and returns its handle.
func StartPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	bin := postgresBin(t)
	dir, err := os.MkdirTemp("", "crawlctl-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	asUser := func(name string, args ...string) *exec.Cmd {
		return exec.Command(filepath.Join(bin, name), args...)
	}
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running PostgreSQL as root needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		// The process itself runs as postgres (not through runuser, which
		// would not pass our signals on and leave the server running).
		asUser = func(name string, args ...string) *exec.Cmd {
			c := exec.Command(filepath.Join(bin, name), args...)
			c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			c.Dir = dir
			return c
		}
	}
	if out, err := asUser("initdb", "-D", data, "-A", "trust", "-U", "crawl", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := FreePort(t)
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	p := &PostgresServer{
		DSN: fmt.Sprintf("postgres://crawl@127.0.0.1:%d/postgres?sslmode=disable", port),
		t:   t,
		start: func() *exec.Cmd {
			srv := asUser("postgres", "-D", data, "-p", strconv.Itoa(port), "-k", dir,
				"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
			srv.Stdout, srv.Stderr = logf, logf
			return srv
		},
	}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}
