package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
)

// Options is one benchmark run's settings (the flags).
type Options struct {
	Scenario          string        `json:"scenario"`
	Seed              int64         `json:"seed"`
	Agents            int           `json:"agents"`
	SignedIn          float64       `json:"signed_in_share"`
	CallsPerHour      float64       `json:"calls_per_agent_hour"`
	MeanCall          time.Duration `json:"mean_call_duration"`
	SoftphonePerHour  float64       `json:"softphone_changes_per_hour"`
	PhoneFlapsPerHour float64       `json:"phone_flaps_per_hour"`
	Duration          time.Duration `json:"bridge_phase"`
	Tail              time.Duration `json:"tail_excluded"`
	Interval          time.Duration `json:"calls_interval"`
	Idle              time.Duration `json:"idle_interval"`
	ActiveWindow      time.Duration `json:"active_window"`
	Roster            time.Duration `json:"roster_interval"`
	Phones            time.Duration `json:"phones_interval"`
	Budget            float64       `json:"budget"`
	Concurrency       int           `json:"concurrency"`
	Faults            bool          `json:"faults"`
	NATS              string        `json:"nats_url,omitempty"`
	BasePoll          time.Duration `json:"bare_poll_duration"`
	LookupDur         time.Duration `json:"lookup_duration"`
	LookupConc        int           `json:"lookup_concurrency"`
	PubRecords        int           `json:"publish_records"`
	CPUProfile        string        `json:"cpu_profile,omitempty"`
	ProgressEvery     time.Duration `json:"-"`
}

// Machine describes where a run happened.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Host       string `json:"host"`
}

// BridgePhase is what the bridge did while the workload ran.
type BridgePhase struct {
	Seconds         float64          `json:"seconds"`
	Polls           int64            `json:"allcallinfoex_requests"`
	PollsPerSec     float64          `json:"polls_per_sec"`
	PeakPollsPerSec float64          `json:"peak_polls_per_sec"` // best 1 s sample
	PeakSecond      float64          `json:"peak_second"`
	Upstream        int64            `json:"upstream_requests"` // every simulator endpoint
	UpstreamByName  map[string]int64 `json:"upstream_by_endpoint"`
	MaxReqPerSec    float64          `json:"max_upstream_per_sec"` // best 1 s sample, query endpoints
	Events          int              `json:"events"`
	EventsPerSec    float64          `json:"events_per_sec"`
	MeanEventBytes  int              `json:"mean_event_bytes"`
	CPUSec          float64          `json:"cpu_seconds"`
	CPUPer1k        float64          `json:"cpu_seconds_per_1k_requests"`
	Tracked         int              `json:"agents_tracked"` // from the last heartbeat
	SignedIn        int              `json:"sim_signed_in_at_end"`
	ActiveEstimate  int              `json:"active_estimate"` // agents in or recently in a call at the end (truth)
	HeapPerAgent    float64          `json:"heap_bytes_per_tracked_agent"`
	RSSPerAgent     float64          `json:"rss_bytes_per_tracked_agent"`
	MemBefore       memSample        `json:"mem_before"`
	MemAfter        memSample        `json:"mem_after"`
	MemStopped      memSample        `json:"mem_stopped"`
	// ProcessHeapPerAgent is the whole process's heap growth over the
	// bridge phase per agent: it also holds the simulator's growing truth,
	// this harness's event log and the NATS server's caches.
	ProcessHeapPerAgent float64        `json:"process_heap_growth_bytes_per_tracked_agent"`
	ReqPerChange        float64        `json:"upstream_requests_per_detected_change"`
	Faults              []string       `json:"faults_applied,omitempty"`
	VisibilityLost      map[string]int `json:"visibility_lost"` // entities reported not visible, per scope
}

// Targets records each scenario target and whether it was met.
type Target struct {
	Name  string  `json:"name"`
	Scope string  `json:"scope"` // "target" of this scenario, or "info"
	Want  string  `json:"want"`
	Got   float64 `json:"got"`
	Met   bool    `json:"met"`
}

// Result is every figure of a run.
type Result struct {
	Started  time.Time          `json:"started"`
	Options  Options            `json:"options"`
	Machine  Machine            `json:"machine"`
	BarePoll PollResult         `json:"bare_poll"`
	Capacity CapacityResult     `json:"capacity"`
	Bridge   BridgePhase        `json:"bridge"`
	Score    Score              `json:"detection"`
	Ratios   map[string]float64 `json:"ratios"`
	Lookups  LookupResult       `json:"lookups"`
	Publish  PublishResult      `json:"publish"`
	Targets  []Target           `json:"targets"`
	Notes    []string           `json:"notes"`
	WallSec  float64            `json:"wall_seconds"`
}

const (
	benchTenant   = "bench"
	bridgeMonitor = 0 // offsets from the first work number
	bareMonitor   = 1
	firstWorkNo   = 1001
)

// eventLog collects the bridge's events from the stream.
type eventLog struct {
	mu      sync.Mutex
	events  []observed
	bad     int
	tracked int
	bytes   int
	lost    map[string]int // visibility-lost events per scope
}

func (l *eventLog) add(m jetstream.Msg) {
	var stored time.Time
	if md, err := m.Metadata(); err == nil {
		stored = md.Timestamp
	}
	o, ok, err := decodeEvent(m.Subject(), m.Data(), stored)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil:
		l.bad++
	case ok:
		l.events = append(l.events, o)
		l.bytes += o.Size
	default:
		ps, err := schemas.ParseSubject(m.Subject())
		switch {
		case err != nil:
		case ps.Aspect == schemas.BridgeHeartbeat:
			if hb, err := decodeHeartbeat(m.Data()); err == nil {
				l.tracked = hb.AgentsTracked
			}
		case ps.Aspect == schemas.BridgeVisibility:
			if v, err := decodeVisibility(m.Data()); err == nil && v.State == schemas.VisibilityLost {
				if l.lost == nil {
					l.lost = map[string]int{}
				}
				l.lost[v.Scope] += max(v.Count, 1)
			}
		}
	}
}

func (l *eventLog) snapshot() ([]observed, int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]observed(nil), l.events...), l.tracked, l.bytes
}

func (l *eventLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// follow hands the tenant's events from the events stream to handle, with
// an ordered consumer (it survives server restarts), until ctx ends.
func follow(ctx context.Context, js jetstream.JetStream, stream, tenant string, handle func(jetstream.Msg), opts ...jetstream.PullConsumeOpt) error {
	var s jetstream.Stream
	for {
		var err error
		if s, err = js.Stream(ctx, stream); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("events stream %s: %w", stream, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{schemas.TenantEvents(tenant)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("ordered consumer: %w", err)
	}
	cc, err := c.Consume(handle, opts...)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

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
		defer os.RemoveAll(dir)
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
	defer sim.Close()
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
			f.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		stopProf = func() { pprof.StopCPUProfile(); f.Close() }
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
	bctx, stopBridge := context.WithCancel(ctx)
	defer stopBridge()
	bridgeDone := make(chan error, 1)
	go func() { bridgeDone <- app.Serve(bctx, cfg, bnc, log) }()
	var elog eventLog
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	followDone := make(chan error, 1)
	go func() { followDone <- follow(fctx, ojs, cfg.Streams.Events, benchTenant, elog.add) }()

	var faults []string
	var faultMu sync.Mutex
	if o.Faults {
		go runFaults(bctx, o, sim, ns, start, func(s string) {
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
	tick := time.NewTicker(every)
	prev, prevT := c0, start
	var bridgeErr error
loop:
	for {
		select {
		case <-ctx.Done():
			stopBridge()
			<-bridgeDone
			return nil, ctx.Err()
		case err := <-bridgeDone:
			bridgeErr = fmt.Errorf("bridge stopped early: %w", err)
			break loop
		case now := <-tick.C:
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
				lineStart(progress), now.Sub(start).Seconds(), o.Duration.Seconds(), rate, up, elog.count())
			if !now.Before(end) {
				break loop
			}
		}
	}
	tick.Stop()
	fmt.Fprintln(progress)
	if bridgeErr != nil {
		stopFollow()
		<-followDone
		return nil, bridgeErr
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

	stopBridge()
	if err := <-bridgeDone; err != nil {
		log.Warn("bridge stopped with an error", "err", err)
		res.Notes = append(res.Notes, "bridge stop: "+err.Error())
	}
	// Read what the bridge flushed on the way out, then stop reading.
	waitQuiet(ctx, &elog, 500*time.Millisecond, 5*time.Second)
	stopFollow()
	if err := <-followDone; err != nil {
		return nil, err
	}
	events, tracked, evBytes := elog.snapshot()
	// The bridge's own heap is what it held while running and let go when
	// it stopped: the truth, this harness's event log and the server's
	// caches are in both samples.
	memStopped := sampleMem()
	elog.mu.Lock()
	res.Bridge.VisibilityLost = elog.lost
	elog.mu.Unlock()

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

// connect opens the bridge's connection (as `cecbridge run` opens it) and
// the harness's own, with a JetStream context on the latter. The caller
// closes both.
func connect(c configs.NATS, log *slog.Logger) (bnc, onc *nats.Conn, ojs jetstream.JetStream, err error) {
	if bnc, err = app.ConnectNATS(c, log); err != nil {
		return nil, nil, nil, fmt.Errorf("bridge nats: %w", err)
	}
	onc, err = nats.Connect(strings.Join(c.URLs, ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Name("cecbench"))
	if err != nil {
		bnc.Close()
		return nil, nil, nil, fmt.Errorf("bench nats: %w", err)
	}
	if ojs, err = jetstream.New(onc); err != nil {
		bnc.Close()
		onc.Close()
		return nil, nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return bnc, onc, ojs, nil
}

// startSim starts the simulator with the run's seeded workload; Close
// stops it.
func startSim(ctx context.Context, o Options, log *slog.Logger) (*cecsim.Sim, error) {
	sim, err := cecsim.New(simConfig(o, log))
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	if err := sim.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	return sim, nil
}

// queryRequests sums the query endpoints (what the budget limits; CMS
// requests share it).
func queryRequests(c map[string]int64) int64 {
	return c["allcallinfoEx"] + c["queryAgentInfo"] + c["queryPhone"] + c["queryAgentInfoByAccount"] + cmsRequests(c)
}

// waitQuiet waits until no new event arrived for quiet, or max.
func waitQuiet(ctx context.Context, l *eventLog, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	last, lastChange := l.count(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		if n := l.count(); n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) >= quiet {
			return
		}
	}
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

// simConfig is the simulator of a run: the seeded workload of the options.
func simConfig(o Options, log *slog.Logger) cecsim.Config {
	return cecsim.Config{
		Seed: o.Seed, Agents: o.Agents, FirstWorkNo: firstWorkNo,
		Workload: cecsim.Workload{
			Enabled: true, SignedInShare: o.SignedIn,
			CallsPerAgentHour: o.CallsPerHour, MeanCallDuration: o.MeanCall,
			SoftphoneChangesPerHour: o.SoftphonePerHour, PhoneFlapsPerHour: o.PhoneFlapsPerHour,
		},
		Logger: log,
	}
}

// bridgeConfig is the bridge configuration of a run, shaped like dev mode's.
func bridgeConfig(o Options, simURL, natsURL string) configs.Bridge {
	cfg := configs.Bridge{
		NATS: configs.NATS{URLs: []string{natsURL}, ReconnectWait: 100 * time.Millisecond, Name: "cecbench-bridge"},
		Log:  configs.Log{Level: "warn", Format: "text"},
		Tenants: []configs.Tenant{{
			Name: benchTenant, FabricURL: simURL, GatewayURL: simURL,
			AppKey: "app-key", AppSecret: "app-secret",
			Monitors:    []configs.Monitor{{AgentID: firstWorkNo + bridgeMonitor, Password: "agent-pass"}},
			Budget:      o.Budget,
			Concurrency: o.Concurrency,
			Intervals: configs.Intervals{
				Calls: o.Interval, Idle: o.Idle, ActiveWindow: o.ActiveWindow,
				Roster: o.Roster, Phones: o.Phones, Heartbeat: 2 * time.Second,
			},
		}},
	}
	return configs.WithDefaults(cfg)
}

func budgetString(b float64) string {
	if b <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.0f req/s", b)
}

// atFraction waits until frac of a phase of length d that began at start
// has passed; false if ctx ended first.
func atFraction(ctx context.Context, start time.Time, d time.Duration, frac float64) bool {
	t := time.NewTimer(time.Until(start.Add(time.Duration(frac * float64(d)))))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runFaults mixes the simulator's faults (and a NATS restart) into the
// bridge phase at fixed fractions of it.
func runFaults(ctx context.Context, o Options, sim *cecsim.Sim, ns *embedded, start time.Time, note func(string)) {
	at := func(frac float64) bool { return atFraction(ctx, start, o.Duration, frac) }
	if !at(0.15) {
		return
	}
	sim.Inject(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultHTTPStatus, Status: 502, Probability: 0.02})
	sim.Inject(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultGarbled, Probability: 0.01})
	sim.Inject(cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultGarbled, Count: 1})
	sim.Inject(cecsim.Fault{Endpoint: "queryPhone", Kind: cecsim.FaultHTTPStatus, Status: 503, Count: 2})
	note("allcallinfoEx: 2% 502, 1% garbled; queryAgentInfo garbled once; queryPhone 503 twice")
	if !at(0.3) {
		return
	}
	sim.KickOut(firstWorkNo + bridgeMonitor)
	note("monitoring agent kicked out")
	if !at(0.45) {
		return
	}
	sim.RevokeTokens()
	note("API Fabric tokens revoked")
	if !at(0.6) {
		return
	}
	if ns != nil {
		if err := ns.restart(); err != nil {
			note("NATS restart failed: " + err.Error())
		} else {
			note("NATS server restarted (same port and store)")
		}
	} else {
		note("NATS restart skipped (external server)")
	}
	if !at(0.75) {
		return
	}
	sim.ClearFaults()
	note("faults cleared")
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
