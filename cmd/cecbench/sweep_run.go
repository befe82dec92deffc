package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// cmsEndpoints are the simulator's CMS endpoint names (Sim.Counters).
var cmsEndpoints = []string{"queryagentcalls", "agentstatusinfobyagentids", "totalagentstate"}

func cmsRequests(c map[string]int64) int64 {
	var n int64
	for _, e := range cmsEndpoints {
		n += c[e]
	}
	return n
}

// describeMode says what a run of a sweep scenario is.
func describeMode(mode string, so SweepOptions) string {
	switch mode {
	case modePerAgent:
		return "per-agent polling, no cms block (the baseline)"
	case modeSweep:
		return fmt.Sprintf("CMS sweep every %s", so.Interval)
	case modeLag:
		return fmt.Sprintf("CMS sweep, CMS data %s behind the gateway, cms.lag not set", so.Lag)
	case modeLagKnown:
		return fmt.Sprintf("CMS sweep, CMS data %s behind the gateway, cms.lag %s", so.Lag, so.Lag)
	case modeLagConfirm:
		return fmt.Sprintf("CMS sweep, CMS data %s behind the gateway, cms.confirm (cms.lag not set)", so.Lag)
	case modeOutage:
		return fmt.Sprintf("CMS sweep; CMS unlicensed for %s, later failing with HTTP 503 for %s", so.Outage, so.Outage)
	}
	return mode
}

// sweepRun runs the bridge in one mode on a fresh simulator (same seed),
// NATS server and store, and scores what it published.
func sweepRun(ctx context.Context, o Options, so SweepOptions, mode string, progress io.Writer, log *slog.Logger) (SweepRun, error) {
	run := SweepRun{Mode: mode, Description: describeMode(mode, so), CMS: mode != modePerAgent, Swept: -1}
	var dataLag, bridgeLag time.Duration
	switch mode {
	case modeLag, modeLagConfirm:
		dataLag = so.Lag
	case modeLagKnown:
		dataLag, bridgeLag = so.Lag, so.Lag
	}
	run.DataLag, run.BridgeLag = dataLag.String(), bridgeLag.String()
	duration := o.Duration
	if mode == modeOutage {
		duration = max(duration, outageRunLength(o, so))
	}

	dir, err := os.MkdirTemp("", "cecbench-sweep-")
	if err != nil {
		return run, fmt.Errorf("store dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	ns, err := startEmbedded(dir)
	if err != nil {
		return run, err
	}
	defer ns.shutdown()

	scfg := simConfig(o, log)
	scfg.CMS.Lag = dataLag
	sim, err := cecsim.New(scfg)
	if err != nil {
		return run, fmt.Errorf("simulator: %w", err)
	}
	defer func() { _ = sim.Close() }()
	rec, err := startRequestLog(sim.Handler())
	if err != nil {
		return run, err
	}
	defer rec.close()

	cfg := bridgeConfig(o, rec.url, ns.url())
	port, err := freePort()
	if err != nil {
		return run, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cfg.HTTP.Listen = addr
	metricsURL := "http://" + addr + "/metrics"
	if run.CMS {
		t := &cfg.Tenants[0]
		t.Intervals.Sweep = so.Interval
		t.CMS = &configs.CMS{URL: rec.url, AK: "cms-ak", SK: "cms-sk", CCID: 1, VDNs: []configs.CMSVDN{{VDN: 1}},
			Concurrency: so.Concurrency, Lag: bridgeLag, Confirm: mode == modeLagConfirm}
		cfg = configs.WithDefaults(cfg)
	}
	bnc, onc, ojs, err := connect(cfg.NATS, log)
	if err != nil {
		return run, err
	}
	defer bnc.Close()
	defer onc.Close()

	// The world as the workload starts: no calls yet, so the truth from
	// here on tells every agent's state.
	signedIn := map[int]bool{}
	for _, wn := range sim.Agents() {
		if a, ok := sim.Agent(wn); ok && a.SignedIn {
			signedIn[wn] = true
		}
	}
	if err := sim.Start(context.WithoutCancel(ctx)); err != nil {
		return run, fmt.Errorf("simulator: %w", err)
	}
	// A CMS does not begin with the world: let the simulator run for the
	// lag first, so that a lagging CMS has data for its whole window. Every
	// run waits as long, so that all see the workload at the same offsets.
	if !pause(ctx, so.Lag+time.Second) {
		return run, ctx.Err()
	}
	stopProf, err := startProfile(o.CPUProfile, mode)
	if err != nil {
		return run, err
	}
	defer stopProf()

	fmt.Fprintf(progress, "%s: %s; %d agents, budget %s, %s\n", mode, run.Description, o.Agents, budgetString(o.Budget), duration)
	c0, cpu0, start := sim.Counters(), cpuSeconds(), time.Now()
	br := serveBridge(ctx, cfg, bnc, ojs, log)
	defer br.cancel()

	every := time.Second
	if mode == modeOutage {
		every = min(250*time.Millisecond, so.Interval) // when the bridge showed what
	}
	sampler := newSweepSampler(metricsURL, benchTenant, every)
	var wg sync.WaitGroup
	wg.Go(func() { sampler.run(br.ctx) })
	var windows []outageWindowTimes
	var faultMu sync.Mutex
	if mode == modeOutage {
		wg.Go(func() {
			w := driveOutages(br.ctx, o, so, sim, sampler, len(sim.Agents()), start, func(s string) {
				faultMu.Lock()
				run.Faults = append(run.Faults, fmt.Sprintf("%5.1fs %s", time.Since(start).Seconds(), s))
				faultMu.Unlock()
				fmt.Fprintf(progress, "\n%s: %s\n", mode, s)
			})
			faultMu.Lock()
			windows = w
			faultMu.Unlock()
		})
	}

	end := start.Add(duration)
	prev, prevT, peak := c0, start, 0.0
	bridgeErr := br.watch(ctx, log, time.Second, end, func(now time.Time) {
		cur := sim.Counters()
		dt := now.Sub(prevT).Seconds()
		q := float64(queryRequests(cur)-queryRequests(prev)) / dt
		peak = max(peak, q)
		fmt.Fprintf(progress, "%s[%s %4.0fs/%.0fs] polls/s %6.0f  cms/s %4.0f  events %8d  swept %s   ", lineStart(progress), mode,
			now.Sub(start).Seconds(), duration.Seconds(), float64(cur["allcallinfoEx"]-prev["allcallinfoEx"])/dt,
			float64(cmsRequests(cur)-cmsRequests(prev))/dt, br.elog.count(), sampler.sweptString())
		prev, prevT = cur, now
	})
	if ctx.Err() != nil {
		wg.Wait()
		return run, ctx.Err()
	}
	fmt.Fprintln(progress)
	el := time.Since(start).Seconds()
	c1, cpu1 := sim.Counters(), cpuSeconds()
	stopProf()
	last := sampler.latest()
	run.Swept, run.Refused = last.swept, last.refused
	_ = br.stop(log) // logged; the run is scored all the same (the sampler and the outage driver end with it)
	wg.Wait()
	if err := br.finish(ctx); err != nil {
		return run, err
	}
	if bridgeErr != nil {
		return run, bridgeErr
	}

	events, _, _ := br.elog.snapshot()
	br.elog.mu.Lock()
	run.VisibilityLost = br.elog.lost
	br.elog.mu.Unlock()
	callsIv, idleIv, stateIv := o.Interval, o.Idle, time.Duration(0)
	if run.CMS {
		// What the bridge is meant to achieve: every agent looked at every
		// sweep.
		callsIv, idleIv, stateIv = min(o.Interval, so.Interval), so.Interval, so.Interval
	}
	run.Score = score(scoreInput{
		Truth: sim.Truth(0), Events: events, SignedIn: signedIn,
		WindowStart: start, WindowEnd: end.Add(-o.Tail),
		CallsInterval: callsIv, IdleInterval: idleIv, ActiveWindow: o.ActiveWindow,
		RosterInterval: o.Roster, PhonesInterval: o.Phones, StateInterval: stateIv,
	})
	run.Seconds, run.Events, run.CPUSec = el, len(events), cpu1-cpu0
	run.Upstream = map[string]int64{}
	var upstream int64
	for k, v := range c1 {
		if d := v - c0[k]; d > 0 {
			run.Upstream[k] = d
			upstream += d
		}
	}
	u := run.Upstream
	run.UpstreamPerSec = float64(upstream) / el
	run.QueryPerSec = float64(queryRequests(u)) / el
	run.PeakQueryPerSec = peak
	run.PollsPerSec = float64(u["allcallinfoEx"]) / el
	run.CMSPerSec = float64(cmsRequests(u)) / el
	if o.Budget > 0 {
		run.BudgetShare = run.CMSPerSec / o.Budget
	}
	s := run.Score
	seen := s.Calls.Seen + s.Groups[groupSoftphone].Seen + s.Groups[groupPhone].Seen
	if g := s.Groups[groupAgentState]; g != nil {
		seen += g.Seen
	}
	run.CallRequestsPerChange = div(float64(u["allcallinfoEx"]+u["queryagentcalls"]), float64(s.Calls.Seen))
	run.RequestsPerChange = div(float64(upstream), float64(seen))
	_, requests := rec.records()
	run.Sweeps, run.SweepPeriod, run.SweepLength = sweepTiming(requests, so.Interval)
	faultMu.Lock()
	run.Outages = outageFigures(start, windows, rec, sampler, so.Interval)
	faultMu.Unlock()
	return run, nil
}

// startProfile writes a CPU profile of one run to file.mode ("" writes
// none); the returned stop may be called more than once.
func startProfile(file, mode string) (func(), error) {
	if file == "" {
		return func() {}, nil
	}
	f, err := os.Create(file + "." + mode)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		})
	}, nil
}
