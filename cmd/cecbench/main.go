package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	if code, ok := childMain(); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "cecbench:", err)
		}
		os.Exit(1)
	}
}

// scenarios are the presets; flags given on the command line override them.
var scenarios = map[string]map[string]string{
	"default": {"agents": "2000", "duration": "40s"},
	"10k":     {"agents": "10000", "interval": "1s", "budget": "0", "duration": "60s", "pub-records": "50000"},
	"60k":     {"agents": "60000", "budget": "2000", "duration": "120s", "tail": "31s", "pub-records": "50000"},
	"faults":  {"agents": "2000", "faults": "true", "duration": "60s"},
	// The chaos drill (chaos.go): real bridge processes, faults, scored
	// histories. chaos-short is the form the test runs.
	"chaos":       chaosPreset,
	"chaos-short": chaosShortPreset,
	// One server, then a three-node cluster with servers killed (cluster.go).
	"cluster": {"agents": "1000", "duration": "30s", "idle": "5s"},
	// Per-agent polling against the CMS sweep, with lag and outages
	// (sweep.go). 10k-sweep's budget holds the 10k preset's per-agent
	// schedule (2,857 req/s); sweep-short is the form the test runs.
	"10k-sweep": {"agents": "10000", "interval": "1s", "budget": "3000", "duration": "60s"},
	"60k-sweep": {"agents": "60000", "budget": "2000", "duration": "120s", "tail": "31s"},
	"sweep-short": {
		"agents": "300", "calls-per-hour": "600", "mean-call": "4s", "duration": "5s", "tail": "2s",
		"interval": "500ms", "idle": "2s", "roster": "2s", "phones": "2s", "concurrency": "8", "budget": "500",
		"sweep": "100ms", "cms-lag": "500ms", "cms-outage": "1s", "sweep-modes": "per-agent,sweep,lag-known,outage",
	},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cecbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	scenario := fs.String("scenario", "default", "preset: default, 10k, 60k, faults, cluster, chaos, chaos-short, 10k-sweep, 60k-sweep or sweep-short (flags override)")
	fs.Int64Var(&o.Seed, "seed", 1, "workload seed")
	fs.IntVar(&o.Agents, "agents", 2000, "simulated agents")
	fs.Float64Var(&o.SignedIn, "signed-in", 0.6, "share of agents signed in")
	fs.Float64Var(&o.CallsPerHour, "calls-per-hour", 60, "call arrivals per signed-in agent and hour")
	fs.DurationVar(&o.MeanCall, "mean-call", 25*time.Second, "mean call duration")
	fs.Float64Var(&o.SoftphonePerHour, "softphone-per-hour", 360, "softphone rebinds per hour, tenant-wide")
	fs.Float64Var(&o.PhoneFlapsPerHour, "phone-flaps-per-hour", 720, "phone suspensions per hour, tenant-wide")
	fs.DurationVar(&o.Duration, "duration", 40*time.Second, "bridge phase (run length)")
	fs.DurationVar(&o.Tail, "tail", 0, "truth excluded at the end of the phase (default: idle interval + 1s)")
	fs.DurationVar(&o.Interval, "interval", time.Second, "call-poll interval for active agents")
	fs.DurationVar(&o.Idle, "idle", 15*time.Second, "call-poll interval for idle agents")
	fs.DurationVar(&o.ActiveWindow, "active-window", 10*time.Minute, "how long an agent stays active after a call")
	fs.DurationVar(&o.Roster, "roster", 10*time.Second, "roster (softphone) poll interval")
	fs.DurationVar(&o.Phones, "phones", 10*time.Second, "phone list poll interval")
	fs.Float64Var(&o.Budget, "budget", 0, "upstream query budget, requests/s (0 = unlimited)")
	fs.IntVar(&o.BridgeBuffer, "bridge-buffer-events", 0, "the bridge's publisher.buffer_events (0 = its default); chaos has its own --buffer-events")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "bridge call-poll workers; the bare poller uses as many")
	fs.BoolVar(&o.Faults, "faults", false, "inject faults: 5xx, garbled bodies, kick-out, token revocation, NATS restart")
	fs.StringVar(&o.NATS, "nats", "", "external NATS URL (default: embedded server with a temporary store)")
	fs.DurationVar(&o.BasePoll, "bare-poll", 5*time.Second, "bare poll baseline duration")
	fs.DurationVar(&o.LookupDur, "lookup-duration", 3*time.Second, "lookup and echo load duration, each")
	fs.IntVar(&o.LookupConc, "lookup-concurrency", 16, "concurrent lookup requesters")
	fs.IntVar(&o.PubRecords, "pub-records", 20000, "records for the publish comparison")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the bridge phase to this file")
	jsonFile := fs.String("json", "", "write every figure as JSON to this file")
	level := fs.String("log-level", "error", "bridge and simulator log level")
	var co ChaosOptions
	chaosFlags(fs, &co)
	var so SweepOptions
	sweepFlags(fs, &so)
	if err := fs.Parse(args); err != nil {
		return err
	}
	preset, ok := scenarios[*scenario]
	if !ok {
		return fmt.Errorf("unknown scenario %q", *scenario)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range preset {
		if !set[name] {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("scenario %s: %s: %w", *scenario, name, err)
			}
		}
	}
	o.Scenario = *scenario
	if o.Tail == 0 {
		o.Tail = o.Idle + time.Second
	}
	if o.Tail >= o.Duration {
		return fmt.Errorf("tail %s must be shorter than the duration %s", o.Tail, o.Duration)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))

	if strings.HasPrefix(o.Scenario, "chaos") {
		res, err := runChaos(ctx, o, co, stderr, log)
		if err != nil {
			return err
		}
		printChaos(stdout, res)
		return writeJSON(*jsonFile, res)
	}
	if isSweepScenario(o.Scenario) {
		res, err := runSweep(ctx, o, so, stderr, log)
		if err != nil {
			return err
		}
		printSweep(stdout, res)
		return writeJSON(*jsonFile, res)
	}
	if o.Scenario == "cluster" {
		res, err := runCluster(ctx, o, stderr, log)
		if err != nil {
			return err
		}
		printCluster(stdout, res)
		return writeJSON(*jsonFile, res)
	}
	res, err := runBench(ctx, o, stderr, log)
	if err != nil {
		return err
	}
	printTable(stdout, res)
	return writeJSON(*jsonFile, res)
}

// writeJSON writes every figure of a run to file ("" writes nothing).
func writeJSON(file string, res any) error {
	if file == "" {
		return nil
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// targets evaluates the targets against a run. Each is marked as a
// target of the run's scenario or as information.
func targets(o Options, r *Result) []Target {
	s := r.Score
	var t []Target
	sc := o.Scenario
	add := func(name, want string, got float64, met bool, scenarios ...string) {
		scope := "info"
		if slices.Contains(scenarios, sc) {
			scope = "target"
		}
		t = append(t, Target{Name: name, Scope: scope, Want: want, Got: got, Met: met})
	}
	add("false events", "= 0", float64(s.False), s.False == 0, "10k", "faults", "default", "60k")
	add("duplicate events", "= 0", float64(s.Duplicates), s.Duplicates == 0, "10k", "faults", "default", "60k")
	long, longSeen := 0, 0
	for _, g := range s.Groups {
		long += g.Long
		longSeen += g.LongSeen
	}
	add("recall %, changes lasting >= 2 intervals", "= 100", 100*ratio(float64(longSeen), float64(long)), longSeen == long, "10k")
	bound := o.Interval.Seconds()
	if o.Budget > 0 {
		bound = max(bound, float64(r.Bridge.ActiveEstimate)/o.Budget)
	}
	p95 := s.Groups[groupCallsActive].Latency.P95 / 1000
	add(fmt.Sprintf("p95 latency s, active agents (bound %.2fs)", bound), fmt.Sprintf("<= %.2f", 1.2*bound), p95, p95 <= 1.2*bound, "10k", "60k")
	if o.Budget > 0 {
		mean := float64(queryRequests(r.Bridge.UpstreamByName)) / r.Bridge.Seconds
		add("mean query requests/s", fmt.Sprintf("<= %.0f", o.Budget), mean, mean <= o.Budget*1.01, "60k")
		add("peak 1s query requests/s (budget+burst)", fmt.Sprintf("<= %.0f", o.Budget*1.1+1), r.Bridge.MaxReqPerSec, r.Bridge.MaxReqPerSec <= o.Budget*1.1+1, "60k")
	}
	add("polling capacity vs bare client", ">= 0.8", r.Ratios["polls_capacity_vs_bare"], r.Ratios["polls_capacity_vs_bare"] >= 0.8, "10k")
	add("publisher events/s vs bare publish", ">= 0.85", r.Publish.Ratio, r.Publish.Ratio >= 0.85, "10k")
	add("bridge heap bytes per tracked agent", "<= 4096", r.Bridge.HeapPerAgent, r.Bridge.HeapPerAgent <= 4096, "10k")
	lk := r.Lookups
	add("lookups/s vs micro echo", ">= 0.9", lk.RateRatio, lk.RateRatio >= 0.9, "default", "10k")
	add("lookup p99 vs echo p99", "<= 1.2", lk.P99Ratio, lk.P99Ratio > 0 && lk.P99Ratio <= 1.2, "default", "10k")
	if two := lk.Two; two != nil {
		add("lookups/s, two instances vs one", ">= 1.7", two.LookupRatio, two.LookupRatio >= 1.7, "default", "10k")
	}
	add("run wall time s", "< 120", r.WallSec, r.WallSec < 120, "default")
	return t
}

func ms(l Latency) string {
	if l.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f/%.0f/%.0f/%.0f", l.P50, l.P95, l.P99, l.Max)
}

func printTable(w io.Writer, r *Result) {
	o := r.Options
	fmt.Fprintf(w, "\ncecbench  scenario=%s  agents=%d signed-in=%.2f calls/agent-h=%.0f mean-call=%s  interval=%s idle=%s budget=%s concurrency=%d faults=%v\n",
		o.Scenario, o.Agents, o.SignedIn, o.CallsPerHour, o.MeanCall, o.Interval, o.Idle, budgetString(o.Budget), o.Concurrency, o.Faults)
	fmt.Fprintf(w, "machine   %d CPUs (GOMAXPROCS %d), %s %s/%s; wall %.0fs\n\n", r.Machine.CPUs, r.Machine.GOMAXPROCS, r.Machine.GoVersion, r.Machine.OS, r.Machine.Arch, r.WallSec)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DETECTION\tchanges\tseen\tmissed<iv\tmissed other\trecall\trecall>=2iv\tlatency p50/p95/p99/max ms\tto stream p50/p95/p99/max ms\t")
	row := func(name string, g *GroupScore) {
		fmt.Fprintf(tw, "%s (%s)\t%d\t%d\t%d\t%d\t%.2f%%\t%.2f%%\t%s\t%s\t\n", name, g.Interval, g.Changes, g.Seen,
			g.MissedShort, g.MissedOther, 100*g.Recall, 100*g.RecallLong, ms(g.Latency), ms(g.LatencyE2E))
	}
	row("calls, all", &r.Score.Calls)
	row("calls, active", r.Score.Groups[groupCallsActive])
	row("calls, idle", r.Score.Groups[groupCallsIdle])
	row("softphone", r.Score.Groups[groupSoftphone])
	row("phone status", r.Score.Groups[groupPhone])
	tw.Flush()
	s := r.Score
	fmt.Fprintf(w, "calls of signed-in agents: latency p50/p95/p99/max %s ms\n", ms(s.Calls.SignedInLat))
	fmt.Fprintf(w, "events %d (snapshots %d, roster %d), false %d, duplicates %d, seq gaps %d; matched before snapshot %d, after window %d\n",
		s.Events, s.Snapshots, s.Roster, s.False, s.Duplicates, s.SeqGaps, s.PreSnapshot, s.OutOfWindow)
	for _, f := range s.FalseSample {
		fmt.Fprintln(w, "  false:", f)
	}
	for _, f := range s.DupSample {
		fmt.Fprintln(w, "  duplicate:", f)
	}
	for _, name := range groups {
		for _, m := range s.Groups[name].MissedSample {
			fmt.Fprintln(w, "  missed:", m)
		}
	}

	b := r.Bridge
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "THROUGHPUT\tbridge\tbare\tratio\t")
	fmt.Fprintf(tw, "allcallinfoEx polls/s, capacity\t%.0f\t%.0f\t%.2f\t\n", r.Capacity.PerSec, r.BarePoll.PerSec, r.Ratios["polls_capacity_vs_bare"])
	fmt.Fprintf(tw, "allcallinfoEx polls/s, schedule peak 1s\t%.0f\t%.0f\t%.2f\t\n", b.PeakPollsPerSec, r.BarePoll.PerSec, r.Ratios["polls_peak_vs_bare"])
	fmt.Fprintf(tw, "allcallinfoEx polls/s, schedule mean\t%.0f\t%.0f\t%.2f\t\n", b.PollsPerSec, r.BarePoll.PerSec, r.Ratios["polls_mean_vs_bare"])
	fmt.Fprintf(tw, "events/s, publisher max (%d rec, %d B)\t%.0f\t%.0f\t%.2f\t\n", r.Publish.Records, r.Publish.BodyBytes, r.Publish.PublisherRate, r.Publish.BareRate, r.Publish.Ratio)
	lk := r.Lookups
	fmt.Fprintf(tw, "lookups/s vs micro echo (%d req., %d conn.)\t%.0f\t%.0f\t%.2f\t\n", lk.Concurrency, lk.Connections, lk.Lookup.PerSec, lk.Echo.PerSec, lk.RateRatio)
	fmt.Fprintf(tw, "lookup p99 ms vs echo p99\t%.2f\t%.2f\t%.2f\t\n", lk.Lookup.Latency.P99, lk.Echo.Latency.P99, lk.P99Ratio)
	if two := lk.Two; two != nil {
		fmt.Fprintf(tw, "two instances vs one: lookups/s\t%.0f\t%.0f\t%.2f\t\n", two.Lookup.PerSec, lk.Lookup.PerSec, two.LookupRatio)
		fmt.Fprintf(tw, "two instances vs one: echo/s (machine bound)\t%.0f\t%.0f\t%.2f\t\n", two.Echo.PerSec, lk.Echo.PerSec, two.EchoRatio)
		fmt.Fprintf(tw, "two instances vs one: agents.list pages/s\t%.0f\t%.0f\t%.2f\t\n", two.List.PerSec, lk.List.PerSec, two.ListRatio)
	}
	fmt.Fprintf(tw, "CPU s per 1k upstream requests\t%.3f\t%.3f\t%.2f\t\n", b.CPUPer1k, r.BarePoll.CPUPer1k, r.Ratios["cpu_per_1k_vs_bare"])
	tw.Flush()
	fmt.Fprintf(w, "bridge phase %.0fs: %d upstream requests (%.0f/s, max 1s query rate %.0f/s), %d events (%.1f/s, mean %d B); lookup errors %d, echo errors %d\n",
		b.Seconds, b.Upstream, float64(b.Upstream)/b.Seconds, b.MaxReqPerSec, b.Events, b.EventsPerSec, b.MeanEventBytes, r.Lookups.Lookup.Errors, r.Lookups.Echo.Errors)

	fmt.Fprintln(w)
	fmt.Fprintf(w, "COST  tracked agents %d (sim signed in %d, active estimate %d)\n", b.Tracked, b.SignedIn, b.ActiveEstimate)
	fmt.Fprintf(w, "      bridge heap %.0f B/agent (after GC: running minus stopped, %d -> %d MB)\n",
		b.HeapPerAgent, b.MemAfter.HeapBytes>>20, b.MemStopped.HeapBytes>>20)
	fmt.Fprintf(w, "      process growth over the phase: heap %.0f B/agent, RSS %.0f B/agent (simulator truth, harness event log and NATS caches included)\n",
		b.ProcessHeapPerAgent, b.RSSPerAgent)
	fmt.Fprintf(w, "      CPU %.1fs in the bridge phase; %.1f upstream requests per detected change\n", b.CPUSec, b.ReqPerChange)
	fmt.Fprintf(w, "      visibility lost (entities, per scope): %v\n", b.VisibilityLost)
	for _, f := range b.Faults {
		fmt.Fprintln(w, "      fault", f)
	}

	printTargets(w, r.Targets, r.Notes)
}

// printTargets writes the targets, each met or not, and the notes.
func printTargets(w io.Writer, targets []Target, notes []string) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\twant\tgot\t\t")
	for _, t := range targets {
		mark := "met"
		if !t.Met {
			mark = "NOT MET"
		}
		if t.Scope != "target" {
			mark += " (info, not a target of this scenario)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.4g\t%s\n", t.Name, t.Want, t.Got, mark)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, n := range notes {
		fmt.Fprintln(w, "note:", strings.TrimSpace(n))
	}
}
