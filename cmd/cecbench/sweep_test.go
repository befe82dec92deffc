package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

func stateEvent(wn int, seq uint64, op schemas.Op, before, after string, by time.Time) observed {
	o := observed{Subject: schemas.AgentStateSubject(benchTenant, wn), Type: schemas.TypeAgentState,
		Op: op, Seq: seq, WorkNo: wn, ByPoll: by, Stored: by.Add(time.Millisecond)}
	if before != "" {
		o.Before = []string{before}
	}
	o.After = []string{after}
	return o
}

// Agent states are scored against the states the truth implies: a call
// ringing makes the agent answering, answered talking, released idle. A
// state republished unchanged is a duplicate; a state the agent was never
// in is false; the recall of changes lasting two seconds is counted apart.
func TestScoreAgentStates(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	truth := []cecsim.Change{
		{Seq: 1, At: at(1000), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "X", After: "alerting"},                     // 1 -> 4
		{Seq: 2, At: at(1500), Kind: cecsim.KindCallStatus, WorkNo: 1001, CallID: "X", Before: "alerting", After: "talking"}, // 4 -> 5
		{Seq: 3, At: at(5000), Kind: cecsim.KindCallRemoved, WorkNo: 1001, CallID: "X"},                                      // 5 -> 1
		{Seq: 4, At: at(6000), Kind: cecsim.KindSignedIn, WorkNo: 1002},                                                      // 0 -> 1
		{Seq: 5, At: at(7000), Kind: cecsim.KindCallRemoved, WorkNo: 1003, CallID: "Y"},                                      // a call from before: 1003 not derivable
	}
	events := []observed{
		stateEvent(1001, 1, schemas.OpSnapshot, "", "1", at(100)),
		stateEvent(1002, 1, schemas.OpSnapshot, "", "0", at(100)),
		stateEvent(1001, 2, schemas.OpUpdate, "1", "5", at(1800)), // the ringing half second missed
		stateEvent(1001, 3, schemas.OpUpdate, "5", "1", at(5300)),
		stateEvent(1001, 4, schemas.OpUpdate, "1", "1", at(6300)), // republished: a duplicate
		stateEvent(1002, 2, schemas.OpUpdate, "0", "7", at(6500)), // busy: never
	}
	s := score(scoreInput{
		Truth: truth, Events: events, SignedIn: map[int]bool{1001: true, 1003: true},
		WindowStart: t0, WindowEnd: at(20000),
		CallsInterval: time.Second, IdleInterval: time.Second, ActiveWindow: time.Minute,
		RosterInterval: 10 * time.Second, PhonesInterval: 10 * time.Second, StateInterval: time.Second,
	})
	g := s.Groups[groupAgentState]
	if g == nil {
		t.Fatal("no agent state group")
	}
	if g.Changes != 4 || g.Seen != 2 || g.MissedShort != 1 || g.MissedOther != 1 {
		t.Errorf("agent state %+v, want 4 changes (answering, talking, idle; 1002 signing in), 2 seen, 1 missed short, 1 missed", g)
	}
	if g.Lasting2s != 3 || g.Lasting2sSeen != 2 {
		t.Errorf("lasting 2 s %d seen %d, want 3 and 2 (talking 3.5 s, idle and signed-in to the end)", g.Lasting2s, g.Lasting2sSeen)
	}
	if s.Duplicates != 1 || s.False != 1 {
		t.Errorf("duplicates %d (%v), false %d (%v), want 1 and 1", s.Duplicates, s.DupSample, s.False, s.FalseSample)
	}
	if got := g.Latency; got.N != 2 || got.Max != 300 {
		t.Errorf("latency %+v, want 2 samples, at most 300 ms", got)
	}
	// Without a state interval there is no agent state group.
	s = score(scoreInput{Truth: truth, WindowStart: t0, WindowEnd: at(20000), CallsInterval: time.Second, IdleInterval: time.Second})
	if _, ok := s.Groups[groupAgentState]; ok {
		t.Error("agent states scored without a state interval")
	}
}

// Call changes lasting two seconds are counted whatever the group's
// interval.
func TestScoreLasting2s(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	truth := []cecsim.Change{
		{Seq: 1, At: at(1000), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "A"},
		{Seq: 2, At: at(2500), Kind: cecsim.KindCallRemoved, WorkNo: 1001, CallID: "A"}, // 1.5 s
		{Seq: 3, At: at(3000), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "B"},
		{Seq: 4, At: at(6000), Kind: cecsim.KindCallRemoved, WorkNo: 1001, CallID: "B"}, // 3 s, missed
	}
	events := []observed{
		callEvent(1001, 1, schemas.OpSnapshot, nil, []string{}, at(100)),
		callEvent(1001, 2, schemas.OpUpdate, []string{}, []string{"A"}, at(1100)),
		callEvent(1001, 3, schemas.OpUpdate, []string{"A"}, []string{}, at(2600)),
	}
	s := score(scoreInput{Truth: truth, Events: events, WindowStart: t0, WindowEnd: at(20000),
		CallsInterval: 500 * time.Millisecond, IdleInterval: 500 * time.Millisecond, ActiveWindow: time.Minute})
	if c := s.Calls; c.Lasting2s != 2 || c.Lasting2sSeen != 0 || c.RecallLasting2s != 0 || c.Long != 4 || c.LongSeen != 2 {
		t.Errorf("calls %+v, want B's two changes lasting 2 s, unseen, and all four lasting 2 intervals, two seen", c)
	}
}

// Chunk requests of one sweep are one sweep; requests an interval apart
// are two.
func TestSweepRounds(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var sweeps []span
	for _, ms := range []int{0, 3, 5, 1000, 1002, 2000} {
		sweeps = append(sweeps, span{From: at(ms), To: at(ms + 20)})
	}
	for _, tc := range []struct {
		from, to, want int
	}{{0, 500, 1}, {1, 1500, 1}, {500, 2500, 2}, {0, 3000, 3}, {2500, 3000, 0}} {
		if got := sweepRounds(sweeps, at(tc.from), at(tc.to), time.Second); got != tc.want {
			t.Errorf("sweeps in [%d, %d) ms: %d, want %d", tc.from, tc.to, got, tc.want)
		}
	}
	n, period, length := sweepTiming(sweeps, time.Second)
	if n != 3 || period.N != 2 || period.Max != 1000 || length.Max != 25 || length.P50 != 22 {
		t.Errorf("timing: %d sweeps, period %+v, length %+v; want 3, every 1000 ms, taking 20-25 ms", n, period, length)
	}
}

// TestSweepScenarioShort runs sweep-short for real, as the 10k and 60k
// sweep scenarios run: per-agent polling, the sweep, a lagging CMS the
// bridge knows of, and CMS taken away twice. It checks that every run was
// scored and measured, not how fast anything was.
func TestSweepScenarioShort(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run")
	}
	var r SweepResult
	out := runScenario(t, []string{"--scenario", "sweep-short"}, &r)
	for _, want := range []string{"DETECTION", "COST", "SWEEP vs PER-AGENT", "OUTAGES", "TARGET"} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %s table:\n%s", want, out)
		}
	}
	var modes []string
	for _, run := range r.Runs {
		modes = append(modes, run.Mode)
		s := run.Score
		if s.Calls.Changes == 0 || s.Calls.Seen == 0 || s.Calls.Lasting2s == 0 {
			t.Errorf("%s: no call changes scored: %+v", run.Mode, s.Calls)
		}
		if s.False != 0 || s.Duplicates != 0 {
			t.Errorf("%s: false %d %v, duplicates %d %v\n%s", run.Mode, s.False, s.FalseSample, s.Duplicates, s.DupSample, out)
		}
		g, hasStates := s.Groups[groupAgentState]
		if run.CMS != hasStates || run.CMS != (run.CMSPerSec > 0) || run.CMS != (run.Swept > 0) {
			t.Errorf("%s: cms %v, agent states scored %v, CMS req/s %.1f, swept %d", run.Mode, run.CMS, hasStates, run.CMSPerSec, run.Swept)
		}
		if hasStates && (g.Changes == 0 || g.Seen == 0) {
			t.Errorf("%s: agent states %+v", run.Mode, g)
		}
		if run.CMS && (run.BudgetShare <= 0 || run.CallRequestsPerChange <= 0) {
			t.Errorf("%s: budget share %v, call requests per change %v", run.Mode, run.BudgetShare, run.CallRequestsPerChange)
		}
	}
	if want := []string{modePerAgent, modeSweep, modeLagKnown, modeOutage}; !slices.Equal(modes, want) {
		t.Fatalf("runs %v, want %v", modes, want)
	}
	outage := r.run(modeOutage)
	if len(outage.Outages) != 2 {
		t.Fatalf("outage windows %+v, want the licence one and the failure one\n%s", outage.Outages, out)
	}
	for i, want := range []string{poller.SweepUnavailable, poller.SweepPartial} {
		w := outage.Outages[i]
		if w.Takeover < 0 || w.RefusedSweeps < 1 || w.AgentsPolled == 0 || !w.Resumed || w.BridgeState != want {
			t.Errorf("outage %d: %+v, want polls after a refused sweep, the bridge saying %s, the sweep back", i, w, want)
		}
	}
	if len(r.Targets) == 0 {
		t.Error("no targets evaluated")
	}
}
