package browser

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/crawlctl/crawlctl/pkg/playwright"
)

//go:embed launcher.js
var launcherJS string

// server is one running Playwright browser server (a Node.js process).
type server struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	endpoint string
	exited   chan struct{}
}

// startServer launches the browser server and waits for its endpoint.
func startServer(ctx context.Context, rt playwright.Runtime, browser string, args []string, log *slog.Logger) (*server, error) {
	cfg, _ := json.Marshal(map[string]any{"browser": browser, "executablePath": rt.Executable, "args": args})
	cmd := exec.Command(rt.Node, "-e", launcherJS)
	cmd.Env = append(os.Environ(), "NODE_PATH="+rt.ModulesDir, "CRAWLCTL_LAUNCH="+string(cfg))
	// The browser dies with us even on SIGKILL; its own process group so a
	// signal to ours does not reach it before we close it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = &logWriter{log: log}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the Playwright browser server: %w", err)
	}
	s := &server{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		var out struct{ WsEndpoint string }
		if !ok || json.Unmarshal([]byte(l), &out) != nil || out.WsEndpoint == "" {
			s.stop(5 * time.Second)
			return nil, fmt.Errorf("the Playwright browser server did not start (see its log above; output %q)", l)
		}
		s.endpoint = out.WsEndpoint
		return s, nil
	case <-time.After(60 * time.Second):
		s.stop(5 * time.Second)
		return nil, errors.New("the Playwright browser server did not start within 60s")
	case <-ctx.Done():
		s.stop(5 * time.Second)
		return nil, ctx.Err()
	}
}

// alive reports whether the server process still runs.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop closes the browser: stdin closed (the launcher closes the browser
// and exits), then SIGKILL to the group after timeout.
func (s *server) stop(timeout time.Duration) {
	s.stdin.Close()
	select {
	case <-s.exited:
	case <-time.After(timeout):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	// Chromium's helpers may outlive the launcher.
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}

// logWriter logs the browser server's stderr lines.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	w.log.Warn("browser server", "stderr", string(p))
	return len(p), nil
}
