package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printCluster prints the two runs of --scenario cluster side by side.
func printCluster(w io.Writer, r *ClusterResult) {
	o := r.Options
	fmt.Fprintf(w, "\ncecbench  scenario=%s  agents=%d signed-in=%.2f calls/agent-h=%.0f mean-call=%s  interval=%s idle=%s duration=%s\n",
		o.Scenario, o.Agents, o.SignedIn, o.CallsPerHour, o.MeanCall, o.Interval, o.Idle, o.Duration)
	fmt.Fprintf(w, "machine   %d CPUs (GOMAXPROCS %d), %s %s/%s; wall %.0fs\n\n", r.Machine.CPUs, r.Machine.GOMAXPROCS, r.Machine.GoVersion, r.Machine.OS, r.Machine.Arch, r.WallSec)
	s, c := r.Single, r.Cluster
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tsingle node (R1)\t%d-node cluster (R%d), servers killed\t\n", c.Nodes, c.Replicas)
	row := func(name, format string, a, b any) {
		fmt.Fprintf(tw, "%s\t"+format+"\t"+format+"\t\n", name, a, b)
	}
	row("events stored", "%d", s.History.Events, c.History.Events)
	row("lost (final state != simulator)", "%d", s.Lost, c.Lost)
	row("duplicates", "%d", s.History.Duplicates, c.History.Duplicates)
	row("forks (two events at one seq)", "%d", s.History.Forks, c.History.Forks)
	row("holes in seq", "%d", s.History.Holes, c.History.Holes)
	row("broken prev_id links", "%d", s.History.BrokenLinks, c.History.BrokenLinks)
	row("false events", "%d", s.Score.False, c.Score.False)
	recall := func(sc Score) string {
		long, seen := 0, 0
		for _, g := range sc.Groups {
			long += g.Long
			seen += g.LongSeen
		}
		return fmt.Sprintf("%.2f%% (%d/%d)", 100*ratio(float64(seen), float64(long)), seen, long)
	}
	row("recall, changes lasting >= 2 intervals", "%s", recall(s.Score), recall(c.Score))
	row("calls, active agents: latency p50/p95/p99/max ms", "%s", ms(s.Score.Groups[groupCallsActive].Latency), ms(c.Score.Groups[groupCallsActive].Latency))
	row("calls, active agents: to stream p50/p95/p99/max ms", "%s", ms(s.Score.Groups[groupCallsActive].LatencyE2E), ms(c.Score.Groups[groupCallsActive].LatencyE2E))
	gaps := func(g []float64) string {
		if len(g) == 0 {
			return "-"
		}
		parts := make([]string, len(g))
		for i, v := range g {
			parts[i] = fmt.Sprintf("%.2f", v)
			if v < 0 {
				parts[i] = "none"
			}
		}
		return strings.Join(parts, ", ")
	}
	row("from a kill to the next stored event, s", "%s", gaps(s.KillGaps), gaps(c.KillGaps))
	row("from a kill to a CEC_EVENTS leader, s", "%s", gaps(s.LeaderGaps), gaps(c.LeaderGaps))
	row("longest pause between stored events, s", "%.2f", s.LongestGap, c.LongestGap)
	row("final state reached after the workload stopped, s", "%.2f", s.Converged, c.Converged)
	tw.Flush()
	for _, f := range c.Faults {
		fmt.Fprintln(w, "fault", f)
	}
	for _, run := range []ClusterRun{s, c} {
		for _, p := range run.History.Problems {
			fmt.Fprintf(w, "  %d node(s): %s\n", run.Nodes, p)
		}
		for _, l := range run.LostSample {
			fmt.Fprintf(w, "  %d node(s) lost: %s\n", run.Nodes, l)
		}
	}
	printTargets(w, r.Targets, r.Notes)
}
