package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
)

// sweepTargetScenarios are the scenarios whose figures are the issue's
// targets; sweep-short reports the same ones as information.
var sweepTargetScenarios = []string{"10k-sweep", "60k-sweep"}

// sweepTargets evaluates the sweep targets against the runs there are.
func sweepTargets(o Options, so SweepOptions, r *SweepResult) []Target {
	scope := "info"
	if slices.Contains(sweepTargetScenarios, o.Scenario) {
		scope = "target"
	}
	var t []Target
	add := func(name, want string, got float64, met bool) {
		t = append(t, Target{Name: name, Scope: scope, Want: want, Got: got, Met: met})
	}
	noFalse := func(mode string, s Score) {
		add(mode+": false events", "= 0", float64(s.False), s.False == 0)
		add(mode+": duplicate events", "= 0", float64(s.Duplicates), s.Duplicates == 0)
	}
	if sw := r.run(modeSweep); sw != nil {
		c, idle := sw.Score.Calls, sw.Score.Groups[groupCallsIdle]
		add("sweep: recall %, call changes lasting >= 2 s, all agents", "= 100", 100*c.RecallLasting2s, c.Lasting2sSeen == c.Lasting2s)
		add("sweep: recall %, call changes lasting >= 2 s, idle agents", "= 100", 100*idle.RecallLasting2s, idle.Lasting2sSeen == idle.Lasting2s)
		p95 := c.Latency.P95 / 1000
		add("sweep: p95 detection latency s, all calls", "<= 1.5", p95, c.Latency.N > 0 && p95 <= 1.5)
		add("sweep: CMS requests, % of the budget", "<= 5", 100*sw.BudgetShare, o.Budget > 0 && sw.BudgetShare <= 0.05)
		noFalse(modeSweep, sw.Score)
	}
	for _, mode := range []string{modeLag, modeLagKnown} {
		if lr := r.run(mode); lr != nil {
			c := lr.Score.Calls
			bound := so.Lag.Seconds() + 1.5
			p95 := c.LatencyE2E.P95 / 1000
			add(fmt.Sprintf("%s: p95 latency to the stream s, all calls (CMS %s behind)", mode, so.Lag), fmt.Sprintf("<= %.1f", bound), p95, c.LatencyE2E.N > 0 && p95 <= bound)
			add(mode+": false events", "= 0", float64(lr.Score.False), lr.Score.False == 0)
		}
	}
	if or := r.run(modeOutage); or != nil {
		for _, w := range or.Outages {
			add("outage, "+w.Kind+": sweeps refused before per-agent polls begin", "= 1",
				float64(w.RefusedSweeps), w.Takeover >= 0 && w.RefusedSweeps == 1)
			add("outage, "+w.Kind+": the sweep takes its agents back, s after CMS returned", "resumes", w.ResumedAfter, w.Resumed)
		}
		if len(or.Outages) == 0 {
			add("outage: CMS taken away and given back", "2 windows", 0, false)
		}
		noFalse(modeOutage, or.Score)
	}
	return t
}

// printSweep writes the sweep scenario's tables.
func printSweep(w io.Writer, r *SweepResult) {
	o, so := r.Options, r.Sweep
	fmt.Fprintf(w, "\ncecbench  scenario=%s  agents=%d signed-in=%.2f calls/agent-h=%.0f mean-call=%s  interval=%s idle=%s budget=%s  sweep=%s cms-lag=%s cms-outage=%s\n",
		o.Scenario, o.Agents, o.SignedIn, o.CallsPerHour, o.MeanCall, o.Interval, o.Idle, budgetString(o.Budget), so.Interval, so.Lag, so.Outage)
	fmt.Fprintf(w, "machine   %d CPUs (GOMAXPROCS %d), %s %s/%s; wall %.0fs\n\n", r.Machine.CPUs, r.Machine.GOMAXPROCS, r.Machine.GoVersion, r.Machine.OS, r.Machine.Arch, r.WallSec)
	for _, run := range r.Runs {
		fmt.Fprintf(w, "%-10s %s (%.0f s)\n", run.Mode, run.Description, run.Seconds)
	}

	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DETECTION\t\tchanges\tseen\trecall\t>=2s\trecall >=2s\trecall >=2iv\tlatency p50/p95/p99/max ms\tto stream p50/p95/p99/max ms\t")
	for _, run := range r.Runs {
		s := run.Score
		rows := []struct {
			name string
			g    *GroupScore
		}{{"calls, active", s.Groups[groupCallsActive]}, {"calls, idle", s.Groups[groupCallsIdle]}, {"calls, all", &s.Calls}}
		if g := s.Groups[groupAgentState]; g != nil {
			rows = append(rows, struct {
				name string
				g    *GroupScore
			}{"agent state", g})
		}
		for _, row := range rows {
			g := row.g
			fmt.Fprintf(tw, "%s\t%s (%s)\t%d\t%d\t%.2f%%\t%d\t%.2f%%\t%.2f%%\t%s\t%s\t\n", run.Mode, row.name, g.Interval, g.Changes, g.Seen,
				100*g.Recall, g.Lasting2s, 100*g.RecallLasting2s, 100*g.RecallLong, ms(g.Latency), ms(g.LatencyE2E))
		}
	}
	_ = tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "COST\tquery req/s mean/peak\tallcallinfoEx/s\tCMS req/s\tbudget share\tcall req per call change\treq per change\tevents (refused)\tfalse\tdup\tswept at end\tCPU s\t")
	for _, run := range r.Runs {
		swept := "-"
		if run.Swept >= 0 {
			swept = fmt.Sprint(run.Swept)
		}
		fmt.Fprintf(tw, "%s\t%.0f/%.0f\t%.0f\t%.1f\t%.2f%%\t%.2f\t%.2f\t%d (%d)\t%d\t%d\t%s\t%.1f\t\n", run.Mode, run.QueryPerSec, run.PeakQueryPerSec,
			run.PollsPerSec, run.CMSPerSec, 100*run.BudgetShare, run.CallRequestsPerChange, run.RequestsPerChange, run.Events, run.Refused,
			run.Score.False, run.Score.Duplicates, swept, run.CPUSec)
	}
	_ = tw.Flush()
	for _, run := range r.Runs {
		if run.Sweeps > 0 {
			fmt.Fprintf(w, "  %s: %d sweeps, one every p50/p95/p99/max %s ms, each taking %s ms\n", run.Mode, run.Sweeps, ms(run.SweepPeriod), ms(run.SweepLength))
		}
	}
	for _, run := range r.Runs {
		for _, f := range run.Score.FalseSample {
			fmt.Fprintf(w, "  %s false: %s\n", run.Mode, f)
		}
		for _, f := range run.Score.DupSample {
			fmt.Fprintf(w, "  %s duplicate: %s\n", run.Mode, f)
		}
		if run.Mode == modePerAgent {
			continue // its misses are the point of the comparison
		}
		for name, g := range run.Score.Groups {
			for _, m := range g.LongMissedSample {
				fmt.Fprintf(w, "  %s missed (%s, lasted 2 intervals): %s\n", run.Mode, name, m)
			}
		}
	}

	printSweepComparison(w, r)
	if or := r.run(modeOutage); or != nil {
		printOutages(w, or)
	}
	printTargets(w, r.Targets, r.Notes)
}

// printSweepComparison sets the sweep against per-agent polling.
func printSweepComparison(w io.Writer, r *SweepResult) {
	pa, sw := r.run(modePerAgent), r.run(modeSweep)
	if pa == nil || sw == nil {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SWEEP vs PER-AGENT\tper-agent\tsweep\tratio\t")
	for _, row := range []struct {
		name string
		g    func(s *Score) *GroupScore
	}{
		{"idle", func(s *Score) *GroupScore { return s.Groups[groupCallsIdle] }},
		{"active", func(s *Score) *GroupScore { return s.Groups[groupCallsActive] }},
		{"all", func(s *Score) *GroupScore { return &s.Calls }},
	} {
		a, b := row.g(&pa.Score), row.g(&sw.Score)
		fmt.Fprintf(tw, "calls, %s: p95 latency ms\t%.0f\t%.0f\t%.3f\t\n", row.name, a.Latency.P95, b.Latency.P95, div(b.Latency.P95, a.Latency.P95))
		fmt.Fprintf(tw, "calls, %s: recall >= 2 s\t%.2f%%\t%.2f%%\t\t\n", row.name, 100*a.RecallLasting2s, 100*b.RecallLasting2s)
	}
	fmt.Fprintf(tw, "call requests per call change\t%.2f\t%.2f\t%.3f\t\n", pa.CallRequestsPerChange, sw.CallRequestsPerChange, div(sw.CallRequestsPerChange, pa.CallRequestsPerChange))
	fmt.Fprintf(tw, "query requests/s\t%.0f\t%.0f\t%.3f\t\n", pa.QueryPerSec, sw.QueryPerSec, div(sw.QueryPerSec, pa.QueryPerSec))
	_ = tw.Flush()
}

// printOutages writes what each CMS outage of the outage run showed.
func printOutages(w io.Writer, run *SweepRun) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "OUTAGES (%s run; seconds from the outage's start unless said)\n", run.Mode)
	for _, f := range run.Faults {
		fmt.Fprintln(w, "  ", f)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "outage\tat\tlength\tfirst refused sweep\tfirst poll (sweeps refused)\tpolls/s before/during/after\tbridge state (at)\tagents polled (all by)\tback after end (first sweep)\t")
	for _, o := range run.Outages {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.3f\t%.3f (%d)\t%.0f/%.0f/%.0f\t%s (%.2f)\t%d of %d (%.1f)\t%.2f (%.2f)\t\n", o.Kind, o.At, o.Length,
			o.FirstSweep, o.Takeover, o.RefusedSweeps, o.PollsPerSecBefore, o.PollsPerSecDuring, o.PollsPerSecAfter, o.BridgeState, o.StateShown,
			o.AgentsPolled, o.SweptBefore, o.AllPolled, o.ResumedAfter, o.FirstSweepAfter)
	}
	_ = tw.Flush()
}
