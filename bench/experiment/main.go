// Command experiment repeats the seed document's study with crawlctl: the
// 20 built-in seeds against the simulator's per-IP limits, with 1 and 3
// egress proxies, each with the reference's fixed assignment (hash) and
// with the pool's shared per-request pacing (pace). It drives the crawlctl
// binary given as its argument and prints a Markdown table; the snapshots
// land in raw_data/metrics/egress_study/<scenario>/.
//
//	go build -o bin/crawlctl ./cmd/crawlctl && go run ./bench/experiment bin/crawlctl
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// timeFactor scales the simulator's limits: *.json 3/s per IP becomes 30/s.
const timeFactor = 10

type scenario struct {
	proxies    int
	assignment string
}

func (s scenario) name() string { return fmt.Sprintf("%d_egress_%s", s.proxies, s.assignment) }

func run(bin string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("crawlctl %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes(), nil
}

type result struct {
	Dir     string `json:"dir"`
	Summary struct {
		DrainSeconds float64            `json:"drain_seconds"`
		Stuck        []json.RawMessage  `json:"stuck_partitions"`
		RateLimited  map[string]float64 `json:"rate_limited_by_egress"`
		Requests     map[string]float64 `json:"requests_by_egress"`
		PeakLag      float64            `json:"peak_lag"`
		DLQByReason  map[string]int64   `json:"dlq_by_reason"`
	} `json:"summary"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/experiment path/to/crawlctl")
		os.Exit(2)
	}
	bin, _ := filepath.Abs(os.Args[1])
	fmt.Println("| scenario | crawled | drain | physical limit | drain / limit | 429s | stuck partitions (≥ 6 s flat) | DLQ | peak lag |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, s := range []scenario{{1, "hash"}, {1, "pace"}, {3, "hash"}, {3, "pace"}} {
		env := []string{"CRAWLCTL_NAME=exp-" + s.name()}
		if _, err := run(bin, env, "up", "-q", "--provider", "local", "--proxies", strconv.Itoa(s.proxies),
			"--proxy-assignment", s.assignment, "--sim-time-factor", strconv.Itoa(timeFactor)); err != nil {
			fail(err)
		}
		if _, err := run(bin, env, "seed", "-q", "--count", "20"); err != nil {
			fail(err)
		}
		out, err := run(bin, env, "collect", "-q", "--until-drained", "--scenario", "egress_study", "--folder", s.name(),
			"--stuck-after", fmt.Sprintf("%ds", 60/timeFactor), "-o", "json")
		if err != nil {
			fail(err)
		}
		if _, err := run(bin, env, "down", "-q", "--purge"); err != nil {
			fail(err)
		}
		var res result
		if err := json.Unmarshal(out, &res); err != nil {
			fail(err)
		}
		var meta struct {
			Run struct {
				Counters struct {
					Crawled int64 `json:"crawled"`
				} `json:"counters"`
			} `json:"run"`
		}
		b, err := os.ReadFile(filepath.Join(res.Dir, "run.json"))
		if err == nil {
			err = json.Unmarshal(b, &meta)
		}
		if err != nil {
			fail(err)
		}
		var limited, requests float64
		for e, n := range res.Summary.Requests {
			requests += n
			limited += res.Summary.RateLimited[e]
		}
		var dlq int64
		for _, n := range res.Summary.DLQByReason {
			dlq += n
		}
		crawled := meta.Run.Counters.Crawled
		limit := float64(crawled) / float64(s.proxies*3*timeFactor)
		fmt.Printf("| %s | %d | %.0f s | %.1f s | %.2f× | %.0f of %.0f (%.1f%%) | %d | %d | %.0f |\n",
			s.name(), crawled, res.Summary.DrainSeconds, limit, res.Summary.DrainSeconds/limit,
			limited, requests, 100*limited/max(requests, 1), len(res.Summary.Stuck), dlq, res.Summary.PeakLag)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
