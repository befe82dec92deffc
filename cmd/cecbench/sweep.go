package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The sweep scenarios (10k-sweep, 60k-sweep, sweep-short) run the same
// seeded workload several times in one invocation, each on a fresh
// simulator, NATS server and bridge: per-agent polling as the baseline,
// then the CMS sweep, the sweep over a CMS whose data trails the gateway
// (the bridge not told, told with cms.lag, or confirming with cms.confirm),
// and the sweep with CMS taken away mid-run and given back.

// SweepOptions are the sweep scenarios' settings on top of Options.
type SweepOptions struct {
	Interval    time.Duration `json:"sweep_interval"`
	Concurrency int           `json:"sweep_concurrency"`
	Lag         time.Duration `json:"cms_lag"`    // CMS data lag of the lag runs
	Outage      time.Duration `json:"cms_outage"` // each CMS outage of the outage run
	Modes       []string      `json:"modes"`
}

// The runs of a sweep scenario.
const (
	modePerAgent   = "per-agent"
	modeSweep      = "sweep"
	modeLag        = "lag"         // CMS lags, the bridge is not told
	modeLagKnown   = "lag-known"   // CMS lags, the bridge's cms.lag says by how much
	modeLagConfirm = "lag-confirm" // CMS lags, the bridge confirms each change with allcallinfoEx
	modeOutage     = "outage"      // CMS unlicensed, then failing, mid-run
)

var sweepModes = []string{modePerAgent, modeSweep, modeLag, modeLagKnown, modeLagConfirm, modeOutage}

func sweepFlags(fs *flag.FlagSet, so *SweepOptions) {
	fs.DurationVar(&so.Interval, "sweep", time.Second, "sweep scenarios: intervals.sweep")
	fs.IntVar(&so.Concurrency, "sweep-concurrency", 8, "sweep scenarios: cms.concurrency (chunk requests in flight)")
	fs.DurationVar(&so.Lag, "cms-lag", 2*time.Second, "sweep scenarios: how far CMS data trails the gateway in the lag runs")
	fs.DurationVar(&so.Outage, "cms-outage", 10*time.Second, "sweep scenarios: length of each CMS outage in the outage run")
	fs.Func("sweep-modes", "sweep scenarios: runs, comma-separated (default "+strings.Join(sweepModes, ",")+")", func(s string) error {
		so.Modes = nil
		for m := range strings.SplitSeq(s, ",") {
			m = strings.TrimSpace(m)
			if !slices.Contains(sweepModes, m) {
				return fmt.Errorf("unknown mode %q (want some of %s)", m, strings.Join(sweepModes, ","))
			}
			so.Modes = append(so.Modes, m)
		}
		return nil
	})
}

// isSweepScenario tells the scenarios runSweep runs.
func isSweepScenario(name string) bool {
	return strings.HasSuffix(name, "-sweep") || name == "sweep-short"
}

// SweepResult is every figure of a sweep scenario.
type SweepResult struct {
	Started time.Time    `json:"started"`
	Options Options      `json:"options"`
	Sweep   SweepOptions `json:"sweep"`
	Machine Machine      `json:"machine"`
	Runs    []SweepRun   `json:"runs"`
	Targets []Target     `json:"targets"`
	Notes   []string     `json:"notes"`
	WallSec float64      `json:"wall_seconds"`
}

// run returns the run of a mode, or nil.
func (r *SweepResult) run(mode string) *SweepRun {
	for i := range r.Runs {
		if r.Runs[i].Mode == mode {
			return &r.Runs[i]
		}
	}
	return nil
}

// SweepRun is one run of a sweep scenario.
type SweepRun struct {
	Mode        string  `json:"mode"`
	Description string  `json:"description"`
	CMS         bool    `json:"cms"`
	DataLag     string  `json:"cms_data_lag"`   // how far the simulator's CMS trails its gateway
	BridgeLag   string  `json:"bridge_cms_lag"` // the bridge's cms.lag
	Seconds     float64 `json:"seconds"`
	// Upstream is every request the simulator served, per endpoint.
	Upstream        map[string]int64 `json:"upstream_by_endpoint"`
	UpstreamPerSec  float64          `json:"upstream_per_sec"`
	QueryPerSec     float64          `json:"query_requests_per_sec"`      // what the budget limits, CMS included
	PeakQueryPerSec float64          `json:"peak_query_requests_per_sec"` // best 1 s sample
	PollsPerSec     float64          `json:"allcallinfoex_per_sec"`
	CMSPerSec       float64          `json:"cms_requests_per_sec"`
	// BudgetShare is CMSPerSec over the budget (0 without one).
	BudgetShare float64 `json:"sweep_budget_share"`
	// CallRequestsPerChange is (allcallinfoEx + queryagentcalls) per call
	// change seen; RequestsPerChange every upstream request per change
	// seen (calls, softphones, phones and agent states).
	CallRequestsPerChange float64 `json:"call_requests_per_call_change"`
	RequestsPerChange     float64 `json:"upstream_requests_per_detected_change"`
	Events                int     `json:"events"`
	Swept                 int     `json:"agents_swept_at_end"` // from the bridge's metrics; -1 without CMS
	// Refused counts the events the publisher refused (its buffer full);
	// the poller detects those changes again.
	Refused int     `json:"events_refused"`
	CPUSec  float64 `json:"cpu_seconds"`
	// Sweeps counts the sweeps (from the queryagentcalls requests), with
	// the time between the starts of two in a row and how long one took
	// from its first request to its last answer.
	Sweeps         int            `json:"sweeps"`
	SweepPeriod    Latency        `json:"sweep_period"`
	SweepLength    Latency        `json:"sweep_duration"`
	VisibilityLost map[string]int `json:"visibility_lost"`
	Score          Score          `json:"detection"`
	Outages        []OutageWindow `json:"outages,omitempty"`
	Faults         []string       `json:"faults_applied,omitempty"`
}

// runSweep runs the scenario's modes one after the other.
func runSweep(ctx context.Context, o Options, so SweepOptions, progress io.Writer, log *slog.Logger) (*SweepResult, error) {
	if len(so.Modes) == 0 {
		so.Modes = sweepModes
	}
	res := &SweepResult{Started: time.Now(), Options: o, Sweep: so}
	host, _ := os.Hostname()
	res.Machine = Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, Host: host}
	progress = &lockedWriter{w: progress}
	for _, mode := range so.Modes {
		run, err := sweepRun(ctx, o, so, mode, progress, log)
		if err != nil {
			return nil, fmt.Errorf("%s run: %w", mode, err)
		}
		res.Runs = append(res.Runs, run)
		runtime.GC() // the next run starts from what this one let go
	}
	res.Targets = sweepTargets(o, so, res)
	res.WallSec = time.Since(res.Started).Seconds()
	res.Notes = append(res.Notes,
		"every run starts a fresh simulator with the same seed: the workload runs in virtual time from the simulator's start, so each run sees the same changes at the same offsets",
		fmt.Sprintf("truth in the last %s of each run is excluded (in flight when it ended), and truth before an entity's first event (its snapshot)", o.Tail),
		"calls on active agents: the agent was in a call, or in one within the active window, as the bridge's own events showed (the poller's notion of active); idle: the rest",
		"latency is by_poll minus the true instant; with cms.lag set by_poll is the answer's time minus the lag, so the lag runs are also given (and judged) by the time the event reached the stream",
		"agent state is scored against the state the simulator's CMS derives from sign-ins and calls (not signed in, idle, answering, talking)",
		"simulator, NATS server and bridge share this process and the machine is shared: timings are noisy, counts are not",
	)
	return res, nil
}
