package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
)

func runID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runBench runs one whole benchmark: bare poll, bridge phase with scoring,
// lookups against echo, publisher against bare publish.
func runBench(ctx context.Context, o Options, progress io.Writer, log *slog.Logger) (*Result, error) {
	res := &Result{Started: time.Now(), Options: o, Ratios: map[string]float64{}}
	host, _ := os.Hostname()
	res.Machine = Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, Host: host}
	id := runID()

	// NATS.
	var ns *embedded
	url := o.NATS
	if url == "" {
		dir, err := os.MkdirTemp("", "cecbench-")
		if err != nil {
			return nil, fmt.Errorf("store dir: %w", err)
		}
		defer func() { _ = os.RemoveAll(dir) }() // a temporary store: nothing to keep
		if ns, err = startEmbedded(dir); err != nil {
			return nil, err
		}
		defer ns.shutdown()
		url = ns.url()
	}

	// Simulator.
	sim, err := startSim(ctx, o, log)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sim.Close() }()
	agents := sim.Agents()

	// Bare poll baseline, monitoring agent of its own.
	fmt.Fprintf(progress, "bare poll: %d workers for %s\n", o.Concurrency, o.BasePoll)
	g := newBareGateway(sim.URL(), firstWorkNo+bareMonitor, o.Concurrency)
	if err := g.signIn(ctx, "agent-pass"); err != nil {
		return nil, err
	}
	res.BarePoll = barePoll(ctx, g, agents, o.Concurrency, o.BasePoll)
	g.signOut(ctx)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Polling capacity of the bridge itself, against the same endpoint.
	capRes, err := capacityPoll(ctx, o, sim, url, o.BasePoll, progress, log)
	if err != nil {
		return nil, err
	}
	res.Capacity = capRes

	// The world as the bridge phase starts.
	signedIn := map[int]bool{}
	for _, wn := range agents {
		if a, ok := sim.Agent(wn); ok && a.SignedIn {
			signedIn[wn] = true
		}
	}
	truthStart := uint64(len(sim.Truth(0)))
	memBefore := sampleMem()

	// Connections: the bridge's (as cecbridge run makes it) and ours.
	cfg := bridgeConfig(o, sim.URL(), url)
	bnc, onc, ojs, err := connect(cfg.NATS, log)
	if err != nil {
		return nil, err
	}
	defer bnc.Close()
	defer onc.Close()

	var stopProf func()
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close() // nothing was written
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		stopProf = func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				log.Warn("cpu profile not written", "err", err)
			}
		}
		defer func() {
			if stopProf != nil {
				stopProf()
			}
		}()
	}

	// Bridge phase.
	fmt.Fprintf(progress, "bridge: %d agents, calls every %s (idle %s), budget %v, %s\n",
		o.Agents, o.Interval, o.Idle, budgetString(o.Budget), o.Duration)
	c0 := sim.Counters()
	cpu0 := cpuSeconds()
	start := time.Now()
	br := serveBridge(ctx, cfg, bnc, ojs, log)
	defer br.cancel()

	var faults []string
	var faultMu sync.Mutex
	if o.Faults {
		go runFaults(br.ctx, o, sim, ns, start, func(s string) {
			faultMu.Lock()
			faults = append(faults, fmt.Sprintf("%5.1fs %s", time.Since(start).Seconds(), s))
			faultMu.Unlock()
			fmt.Fprintf(progress, "\nfault: %s\n", s)
		})
	}

	end := start.Add(o.Duration)
	peak, peakAt, peakUp := 0.0, 0.0, 0.0
	every := o.ProgressEvery
	if every <= 0 {
		every = time.Second
	}
	prev, prevT := c0, start
	bridgeErr := br.watch(ctx, log, every, end, func(now time.Time) {
		cur := sim.Counters()
		dt := now.Sub(prevT).Seconds()
		rate := float64(cur["allcallinfoEx"]-prev["allcallinfoEx"]) / dt
		up := float64(queryRequests(cur)-queryRequests(prev)) / dt
		if rate > peak {
			peak, peakAt = rate, now.Sub(start).Seconds()
		}
		peakUp = max(peakUp, up)
		prev, prevT = cur, now
		fmt.Fprintf(progress, "%s[bridge %4.0fs/%.0fs] polls/s %7.0f  queries/s %7.0f  events %8d   ",
			lineStart(progress), now.Sub(start).Seconds(), o.Duration.Seconds(), rate, up, br.elog.count())
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	fmt.Fprintln(progress)
	if bridgeErr != nil {
		br.stopFollow()
		return nil, errors.Join(bridgeErr, <-br.followDone)
	}
	el := time.Since(start).Seconds()
	c1 := sim.Counters()
	cpu1 := cpuSeconds()
	memAfter := sampleMem()
	if stopProf != nil {
		stopProf()
		stopProf = nil
	}

	// Lookups against echo while the bridge still serves.
	fmt.Fprintf(progress, "lookups vs echo: %d requesters, %s each\n", o.LookupConc, o.LookupDur)
	lk, err := benchLookups(ctx, url, cfg, agents, o.LookupConc, o.LookupDur)
	if err != nil {
		log.Warn("lookup bench failed", "err", err)
		res.Notes = append(res.Notes, "lookup bench failed: "+err.Error())
	}
	res.Lookups = lk

	if err := br.stop(log); err != nil {
		res.Notes = append(res.Notes, "bridge stop: "+err.Error())
	}
	// Read what the bridge flushed on the way out, then stop reading.
	if err := br.finish(ctx); err != nil {
		return nil, err
	}
	events, tracked, evBytes := br.elog.snapshot()
	// The bridge's own heap is what it held while running and let go when
	// it stopped: the truth, this harness's event log and the server's
	// caches are in both samples.
	memStopped := sampleMem()
	br.elog.mu.Lock()
	res.Bridge.VisibilityLost = br.elog.lost
	br.elog.mu.Unlock()

	// Score.
	truth := sim.Truth(truthStart)
	res.Score = score(scoreInput{
		Truth: truth, Events: events, SignedIn: signedIn,
		WindowStart: start, WindowEnd: end.Add(-o.Tail),
		CallsInterval: o.Interval, IdleInterval: o.Idle, ActiveWindow: o.ActiveWindow,
		RosterInterval: o.Roster, PhonesInterval: o.Phones,
	})

	b := &res.Bridge
	b.Seconds = el
	b.Polls = c1["allcallinfoEx"] - c0["allcallinfoEx"]
	b.PollsPerSec = float64(b.Polls) / el
	b.PeakPollsPerSec, b.PeakSecond, b.MaxReqPerSec = peak, peakAt, peakUp
	b.UpstreamByName = map[string]int64{}
	for k, v := range c1 {
		if d := v - c0[k]; d > 0 {
			b.UpstreamByName[k] = d
			b.Upstream += d
		}
	}
	b.Events = len(events)
	b.EventsPerSec = float64(len(events)) / el
	if len(events) > 0 {
		b.MeanEventBytes = evBytes / len(events)
	}
	b.CPUSec = cpu1 - cpu0
	b.CPUPer1k = div(b.CPUSec*1000, float64(b.Upstream))
	b.Tracked = tracked
	b.MemBefore, b.MemAfter, b.MemStopped = memBefore, memAfter, memStopped
	if tracked > 0 {
		b.HeapPerAgent = (float64(memAfter.HeapBytes) - float64(memStopped.HeapBytes)) / float64(tracked)
		b.ProcessHeapPerAgent = (float64(memAfter.HeapBytes) - float64(memBefore.HeapBytes)) / float64(tracked)
		b.RSSPerAgent = (float64(memAfter.RSSBytes) - float64(memBefore.RSSBytes)) / float64(tracked)
	}
	for _, wn := range sim.Agents() {
		if a, ok := sim.Agent(wn); ok && a.SignedIn {
			b.SignedIn++
		}
	}
	b.ActiveEstimate = activeAt(sim.Truth(0), events, end, o.ActiveWindow)
	b.ReqPerChange = div(float64(b.Upstream), float64(res.Score.Calls.Seen+res.Score.Groups[groupSoftphone].Seen+res.Score.Groups[groupPhone].Seen))
	faultMu.Lock()
	b.Faults = faults
	faultMu.Unlock()

	// Publisher against bare async publish, after the bridge stopped.
	body := sampleBody(events)
	fmt.Fprintf(progress, "publish: %d records of %d bytes, publisher vs bare async\n", o.PubRecords, len(body))
	pcfg := publisher.Config{
		EventsStream: cfg.Streams.Events, StateStream: cfg.Streams.State,
		MaxInFlight: cfg.Publisher.MaxInFlight, AckTimeout: cfg.Publisher.AckTimeout,
		BufferEvents: cfg.Publisher.BufferEvents, DuplicateWindow: cfg.Streams.DuplicateWindow,
		MaxAge: cfg.Streams.MaxAge, MaxBytes: cfg.Streams.MaxBytes, Replicas: cfg.Streams.Replicas,
		Logger: log,
	}
	pr, err := benchPublish(ctx, onc, pcfg, id, o.PubRecords, min(max(o.Agents, 1), 2000), body, cfg.Publisher.MaxInFlight)
	if err != nil {
		log.Warn("publish bench failed", "err", err)
		res.Notes = append(res.Notes, "publish bench failed: "+err.Error())
	}
	res.Publish = pr

	res.Ratios["polls_capacity_vs_bare"] = div(res.Capacity.PerSec, res.BarePoll.PerSec)
	res.Ratios["polls_peak_vs_bare"] = div(b.PeakPollsPerSec, res.BarePoll.PerSec)
	res.Ratios["polls_mean_vs_bare"] = div(b.PollsPerSec, res.BarePoll.PerSec)
	res.Ratios["publisher_vs_bare_publish"] = pr.Ratio
	res.Ratios["lookups_vs_echo"] = lk.RateRatio
	res.Ratios["lookup_p99_vs_echo_p99"] = lk.P99Ratio
	if two := lk.Two; two != nil {
		res.Ratios["lookups_two_vs_one_instance"] = two.LookupRatio
		res.Ratios["echo_two_vs_one_instance"] = two.EchoRatio
		res.Ratios["list_two_vs_one_instance"] = two.ListRatio
	}
	res.Ratios["cpu_per_1k_vs_bare"] = div(b.CPUPer1k, res.BarePoll.CPUPer1k)
	res.WallSec = time.Since(res.Started).Seconds()
	res.Targets = targets(o, res)
	res.Notes = append(res.Notes,
		fmt.Sprintf("truth after %s excluded (last %s of the bridge phase: in flight when it ended)", end.Add(-o.Tail).Format("15:04:05.000"), o.Tail),
		"truth before an entity's snapshot is not counted (the snapshot holds it)",
		"simulator, NATS server and bridge share this process: CPU figures include all three; compare with the bare poll's CPU per 1k",
		"polling capacity: a bridge wired as in `cecbridge run` with every agent always due (intervals 1ms), after a warm-up; the detection phase polls on its schedule, so its rates show demand, not capacity",
		"lookups: one and two instances alternate in rounds; the second instance (its own connection, state view and lookup service, as a second cecbridge would run) is in this process, so both share the machine's CPUs with the NATS server and the requesters: the echo's two-vs-one ratio is what the machine allows",
	)
	return res, nil
}

// queryRequests sums the query endpoints (what the budget limits; CMS
// requests share it).
func queryRequests(c map[string]int64) int64 {
	return c["allcallinfoEx"] + c["queryAgentInfo"] + c["queryPhone"] + c["queryAgentInfoByAccount"] + cmsRequests(c)
}

// activeAt estimates how many agents the poller counts as active at t: in
// a call, or in one within window (from the truth and the bridge's
// snapshots).
func activeAt(truth []cecsim.Change, events []observed, t time.Time, window time.Duration) int {
	held := map[int]int{}
	last := map[int]time.Time{}
	for _, e := range events {
		if e.Type == schemas.TypeAgentCalls && e.Op == schemas.OpSnapshot && len(e.After) > 0 {
			held[e.WorkNo], last[e.WorkNo] = len(e.After), e.ByPoll
		}
	}
	for _, c := range truth {
		if c.At.After(t) {
			break
		}
		switch c.Kind {
		case cecsim.KindCallAdded:
			held[c.WorkNo]++
			last[c.WorkNo] = c.At
		case cecsim.KindCallRemoved:
			held[c.WorkNo] = max(held[c.WorkNo]-1, 0)
			last[c.WorkNo] = c.At
		}
	}
	n := 0
	for wn, at := range last {
		if held[wn] > 0 || t.Sub(at) < window {
			n++
		}
	}
	return n
}

// sampleBody is a bridge call event body of mean size, for the publish bench.
func sampleBody(events []observed) []byte {
	total, n := 0, 0
	for _, e := range events {
		if e.Type == schemas.TypeAgentCalls {
			total += e.Size
			n++
		}
	}
	size := 400
	if n > 0 {
		size = total / n
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = 'x'
	}
	return b
}

func budgetString(b float64) string {
	if b <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.0f req/s", b)
}

// lineStart rewrites the progress line on a terminal and starts a new one
// elsewhere.
func lineStart(w io.Writer) string {
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return "\r"
		}
	}
	return "\n"
}
