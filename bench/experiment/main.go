// Command experiment repeats the seed document's study with crawlctl: the
// 20 built-in seeds against the simulator's per-IP limits, with 1, 3 and 5
// egress proxies, with the pool's shared per-request pacing (pace) and, on
// request, the reference's fixed assignment (hash). Each scenario runs
// -repeats times (up, seed, collect --until-drained, down); it drives the
// crawlctl binary given as its argument and prints a Markdown table of the
// median, min and max; the snapshots land in
// raw_data/metrics/egress_study/<scenario>_<repeat>/.
//
//	go build -o bin/crawlctl ./cmd/crawlctl && go run ./bench/experiment bin/crawlctl
//	go run ./bench/experiment -scenarios 1:hash,3:hash,1:pace,3:pace bin/crawlctl
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// measure is one run's figures.
type measure struct {
	crawled, retried, dlq      int64
	drain, limit, limited, req float64
	stuck                      int
}

func once(bin string, s scenario, repeat int) (measure, error) {
	env := []string{"CRAWLCTL_NAME=exp-" + strings.ReplaceAll(s.name(), "_", "-")}
	if _, err := run(bin, env, "up", "-q", "--provider", "local", "--proxies", strconv.Itoa(s.proxies),
		"--proxy-assignment", s.assignment, "--sim-time-factor", strconv.Itoa(timeFactor)); err != nil {
		return measure{}, err
	}
	defer run(bin, env, "down", "-q", "--purge")
	if _, err := run(bin, env, "seed", "-q", "--count", "20"); err != nil {
		return measure{}, err
	}
	out, err := run(bin, env, "collect", "-q", "--until-drained", "--scenario", "egress_study",
		"--folder", fmt.Sprintf("%s_%d", s.name(), repeat), "--stuck-after", fmt.Sprintf("%ds", 60/timeFactor), "-o", "json")
	if err != nil {
		return measure{}, err
	}
	var res result
	if err := json.Unmarshal(out, &res); err != nil {
		return measure{}, err
	}
	var meta struct {
		Run struct {
			Counters struct {
				Crawled int64 `json:"crawled"`
				Retried int64 `json:"retried"`
			} `json:"counters"`
		} `json:"run"`
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, "run.json"))
	if err == nil {
		err = json.Unmarshal(b, &meta)
	}
	if err != nil {
		return measure{}, err
	}
	m := measure{crawled: meta.Run.Counters.Crawled, retried: meta.Run.Counters.Retried, drain: res.Summary.DrainSeconds,
		stuck: len(res.Summary.Stuck)}
	for e, n := range res.Summary.Requests {
		m.req += n
		m.limited += res.Summary.RateLimited[e]
	}
	for _, n := range res.Summary.DLQByReason {
		m.dlq += n
	}
	m.limit = float64(m.crawled) / float64(s.proxies*3*timeFactor)
	return m, nil
}

// spread is "median (min–max)" of the runs' values.
func spread(ms []measure, f func(measure) float64, format string) string {
	vs := make([]float64, len(ms))
	for i, m := range ms {
		vs[i] = f(m)
	}
	slices.Sort(vs)
	med := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		med = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	if len(vs) == 1 {
		return fmt.Sprintf(format, med)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", med, vs[0], vs[len(vs)-1])
}

func main() {
	repeats := flag.Int("repeats", 3, "runs per scenario")
	list := flag.String("scenarios", "1:pace,3:pace,5:pace", "egress:assignment, comma-separated")
	flag.Parse()
	if flag.NArg() != 1 || *repeats < 1 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/experiment [-repeats 3] [-scenarios 1:pace,3:pace,5:pace] path/to/crawlctl")
		os.Exit(2)
	}
	var scenarios []scenario
	for _, f := range strings.Split(*list, ",") {
		n, a, ok := strings.Cut(f, ":")
		p, err := strconv.Atoi(n)
		if !ok || err != nil || p < 1 || (a != "pace" && a != "hash") {
			fmt.Fprintf(os.Stderr, "-scenarios: %q is not egress:pace or egress:hash\n", f)
			os.Exit(2)
		}
		scenarios = append(scenarios, scenario{p, a})
	}
	bin, _ := filepath.Abs(flag.Arg(0))
	fmt.Printf("%d runs per scenario: median (min–max)\n\n", *repeats)
	fmt.Println("| scenario | crawled | drain | physical limit | drain / limit | 429s | retries | stuck partitions (≥ 6 s flat) | DLQ |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, s := range scenarios {
		var ms []measure
		for i := range *repeats {
			m, err := once(bin, s, i+1)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "%s run %d: drained in %.0f s, %.2f× the limit\n", s.name(), i+1, m.drain, m.drain/m.limit)
			ms = append(ms, m)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.name(),
			spread(ms, func(m measure) float64 { return float64(m.crawled) }, "%.0f"),
			spread(ms, func(m measure) float64 { return m.drain }, "%.0f s"),
			spread(ms, func(m measure) float64 { return m.limit }, "%.1f s"),
			spread(ms, func(m measure) float64 { return m.drain / m.limit }, "%.2f×"),
			spread(ms, func(m measure) float64 { return 100 * m.limited / max(m.req, 1) }, "%.2f%%"),
			spread(ms, func(m measure) float64 { return float64(m.retried) }, "%.0f"),
			spread(ms, func(m measure) float64 { return float64(m.stuck) }, "%.0f"),
			spread(ms, func(m measure) float64 { return float64(m.dlq) }, "%.0f"))
	}
}
