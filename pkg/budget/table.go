package budget

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

func mi(v int64) string  { return strconv.FormatInt(v, 10) + "Mi" }
func cpu(v int64) string { return strconv.FormatInt(v, 10) + "m" }

func signed(v int64, unit string) string {
	return fmt.Sprintf("%+d%s", v, unit)
}

// WriteTable prints the plan as a table: component rows, a total row that is
// the sum of the rows, the remainder and caps, the comparison with the
// reference profile, and warnings.
func (p *Plan) WriteTable(out io.Writer) error {
	fmt.Fprintf(out, "profile %s: node %s memory, %s CPU; %d proxies, %d graph writer(s), %d grid worker(s), %d frontier partitions\n\n",
		p.Profile, mi(p.NodeMemoryMi), cpu(p.NodeCPUm), p.Proxies, p.GraphWriters, p.GridWorkers, p.Partitions)

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tREPLICAS\tMEMORY REQ/LIM\tCPU REQ/LIM\tTOTAL MEM REQ\tTOTAL MEM LIM\tTOTAL CPU REQ\tTOTAL CPU LIM")
	for _, c := range p.Components {
		name := c.Name
		switch {
		case c.Reserved:
			name += " (reserved)"
		case c.Scaled:
			name += " (scaled)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s/%s\t%s/%s\t%s\t%s\t%s\t%s\n", name, c.Replicas,
			mi(c.RequestMemoryMi), mi(c.LimitMemoryMi), cpu(c.RequestCPUm), cpu(c.LimitCPUm),
			mi(c.TotalRequestMemoryMi), mi(c.TotalLimitMemoryMi), cpu(c.TotalRequestCPUm), cpu(c.TotalLimitCPUm))
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t\t%s\t%s\t%s\t%s\n",
		mi(p.Totals.RequestMemoryMi), mi(p.Totals.LimitMemoryMi), cpu(p.Totals.RequestCPUm), cpu(p.Totals.LimitCPUm))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(out, "\nremainder for workers + graph writers: %s (node %s - fixed limits %s)\n",
		mi(p.RemainderMi), mi(p.NodeMemoryMi), mi(p.FixedLimitMi))
	fmt.Fprintf(out, "max combined replicas: %d (per-pod limit %s)\n", p.MaxReplicas, mi(p.PerPodLimitMi))
	capped := ""
	if p.MaxWorkersByMemory > 0 {
		capped = fmt.Sprintf(", capped by CPU requests (memory holds %d)", p.MaxWorkersByMemory)
	}
	fmt.Fprintf(out, "max workers: %d (KEDA maxReplicaCount %d)%s + %d graph writer(s)\n", p.MaxWorkers, p.KEDAMaxReplicaCount, capped, p.GraphWriters)
	fmt.Fprintf(out, "CPU: requests %s, limits %s of the node's %s\n", cpu(p.Totals.RequestCPUm), cpu(p.Totals.LimitCPUm), cpu(p.NodeCPUm))
	if c := p.Comparison; c != nil {
		if c.Fits {
			fmt.Fprintf(out, "vs %s profile (remainder %s, %d combined replicas): %s remainder, %s replicas\n",
				c.Profile, mi(c.RemainderMi), c.MaxReplicas, signed(c.DeltaRemainderMi, "Mi"), signed(int64(c.DeltaMaxReplicas), ""))
		} else {
			fmt.Fprintf(out, "vs %s profile: the reference stack does not fit these settings\n", c.Profile)
		}
	}
	if len(p.Warnings) > 0 {
		fmt.Fprintln(out, "\nwarnings:")
		for _, w := range p.Warnings {
			fmt.Fprintf(out, "  - %s\n", w)
		}
	}
	return nil
}
