package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/internal/testenv"
)

// echoServer echoes every connection on loopback until the test ends.
func echoServer(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln
}

// BenchmarkProxyTunnels opens 1,000 CONNECT tunnels through `crawlctl run
// proxy` to a loopback echo server, checks each one echoes, and reports
// the proxy's resident memory with all of them open (goal: ≤ 64 MiB; the
// budget gives a proxy 384Mi), of the runtime build the proxy's pods run
// (BENCH_BUILD=full: the build users install). Run with -benchtime 1x:
// bench/proxy.sh does.
func BenchmarkProxyTunnels(b *testing.B) {
	const tunnels = 1000
	echo := echoServer(b)
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	cmd := exec.Command(testenv.CrawlctlBench(b), "run", "proxy", "-q", "--listen", listen, "--admin-listen", "127.0.0.1:0",
		"--allow", echo.Addr().String())
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testenv.Eventually(b, 10*time.Second, "the proxy to listen", func() bool {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	var rss float64
	for b.Loop() {
		conns := make([]net.Conn, 0, tunnels)
		for i := range tunnels {
			c, err := net.Dial("tcp", listen)
			if err != nil {
				b.Fatalf("tunnel %d: %v", i, err)
			}
			fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", echo.Addr(), echo.Addr())
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("tunnel %d: %v %v", i, resp, err)
			}
			msg := fmt.Sprintf("ping %d\n", i)
			io.WriteString(c, msg)
			line, err := br.ReadString('\n')
			if err != nil || line != msg {
				b.Fatalf("tunnel %d echoed %q, %v", i, line, err)
			}
			conns = append(conns, c)
		}
		time.Sleep(200 * time.Millisecond)
		rss = max(rss, testenv.StatusMiB(cmd.Process.Pid, "VmRSS:"))
		for _, c := range conns {
			c.Close()
		}
	}
	b.ReportMetric(rss, "RSS-MiB")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkReadResponseHead parses the head of a typical response (nginx's,
// as the benchmarks' backend sends it), field checks included: the part of
// the per-request cost that grows with each header line.
func BenchmarkReadResponseHead(b *testing.B) {
	head := "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 12:00:00 GMT\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Length: 23\r\nConnection: keep-alive\r\n" +
		"Cache-Control: no-store, max-age=0\r\nX-Request-Id: 5f0c1e6a-8a7d-4d0e-9b1f-2f4e6c8d0a1b\r\n\r\n"
	r := strings.NewReader(head)
	br := bufio.NewReaderSize(r, 4<<10)
	scratch := make([]byte, 0, 4<<10)
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(head)
		br.Reset(r)
		if _, err := readResponseHead(br, scratch[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
