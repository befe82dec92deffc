package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// callEvent builds an observed calls event.
func callEvent(wn int, seq uint64, op schemas.Op, before, after []string, by time.Time) observed {
	return observed{
		Subject: schemas.AgentCallsSubject(benchTenant, wn), Type: schemas.TypeAgentCalls,
		Op: op, Seq: seq, WorkNo: wn, Before: before, After: after, ByPoll: by, Stored: by.Add(time.Millisecond),
	}
}

func TestScoreReportsMissedDuplicateAndFalse(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	truth := []cecsim.Change{
		{Seq: 1, At: at(1000), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "X"},
		{Seq: 2, At: at(2000), Kind: cecsim.KindCallAdded, WorkNo: 1002, CallID: "Y"}, // never reported: missed
		{Seq: 3, At: at(5000), Kind: cecsim.KindCallRemoved, WorkNo: 1001, CallID: "X"},
		{Seq: 4, At: at(6000), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "W"}, // 300 ms call: missed, short
		{Seq: 5, At: at(6300), Kind: cecsim.KindCallRemoved, WorkNo: 1001, CallID: "W"},
		{Seq: 6, At: at(7000), Kind: cecsim.KindPhoneStatus, PhoneNum: "88881001", Before: "0", After: "1"},
	}
	events := []observed{
		callEvent(1001, 1, schemas.OpSnapshot, nil, []string{}, at(100)),
		callEvent(1002, 1, schemas.OpSnapshot, nil, []string{}, at(100)),
		callEvent(1001, 2, schemas.OpUpdate, []string{}, []string{"X"}, at(1500)),
		callEvent(1001, 2, schemas.OpUpdate, []string{}, []string{"X"}, at(1500)), // injected duplicate (same seq)
		callEvent(1001, 3, schemas.OpUpdate, []string{"X"}, []string{}, at(5400)),
		callEvent(1001, 4, schemas.OpUpdate, []string{}, []string{"X"}, at(5600)), // X again: a duplicate fact
		callEvent(1002, 2, schemas.OpUpdate, []string{}, []string{"Z"}, at(5700)), // Z never existed: false
		{Subject: schemas.PhoneStateSubject(benchTenant, "88881001"), Type: schemas.TypePhoneState, Op: schemas.OpSnapshot,
			Seq: 1, Phone: "88881001", After: []string{"0"}, ByPoll: at(200)},
		{Subject: schemas.PhoneStateSubject(benchTenant, "88881001"), Type: schemas.TypePhoneState, Op: schemas.OpUpdate,
			Seq: 2, Phone: "88881001", Before: []string{"0"}, After: []string{"1"}, ByPoll: at(9000)},
	}
	s := score(scoreInput{
		Truth: truth, Events: events, WindowStart: t0, WindowEnd: at(20000),
		CallsInterval: time.Second, IdleInterval: 4 * time.Second, ActiveWindow: time.Minute,
		RosterInterval: 10 * time.Second, PhonesInterval: 10 * time.Second,
	})
	if s.Duplicates != 2 {
		t.Errorf("duplicates = %d, want 2 (%v)", s.Duplicates, s.DupSample)
	}
	if s.False != 1 {
		t.Errorf("false = %d, want 1 (%v)", s.False, s.FalseSample)
	}
	c := s.Calls
	if c.Changes != 5 || c.Seen != 2 {
		t.Errorf("calls changes/seen = %d/%d, want 5/2", c.Changes, c.Seen)
	}
	if c.MissedShort != 2 || c.MissedOther != 1 {
		t.Errorf("missed short/other = %d/%d, want 2/1", c.MissedShort, c.MissedOther)
	}
	// X was added while 1001 was idle (no call seen yet); its removal
	// inherits the group; W came after X was seen, so 1001 was active.
	if g := s.Groups[groupCallsActive]; g.Changes != 2 || g.MissedShort != 2 {
		t.Errorf("active group = %+v, want the 2 changes of W, both missed as short", g)
	}
	if got := c.Latency; got.N != 2 || got.P50 != 400 || got.Max != 500 {
		t.Errorf("call latency = %+v, want 2 samples, p50 400 ms, max 500 ms", got)
	}
	if p := s.Groups[groupPhone]; p.Seen != 1 || p.Latency.Max != 2000 {
		t.Errorf("phone group = %+v, want 1 seen with 2 s latency", p)
	}
}

func TestScoreCleanRunAndWindow(t *testing.T) {
	t0 := time.Now()
	truth := []cecsim.Change{
		{Seq: 1, At: t0.Add(-time.Second), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "A"}, // before the window
		{Seq: 2, At: t0.Add(2 * time.Second), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "B"},
		{Seq: 3, At: t0.Add(30 * time.Second), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "C"}, // after it
	}
	events := []observed{
		callEvent(1001, 1, schemas.OpSnapshot, nil, []string{"A"}, t0.Add(100*time.Millisecond)),
		callEvent(1001, 2, schemas.OpUpdate, []string{"A"}, []string{"A", "B"}, t0.Add(2500*time.Millisecond)),
	}
	s := score(scoreInput{
		Truth: truth, Events: events, WindowStart: t0, WindowEnd: t0.Add(10 * time.Second),
		CallsInterval: time.Second, IdleInterval: 15 * time.Second, ActiveWindow: time.Minute,
		RosterInterval: 10 * time.Second, PhonesInterval: 10 * time.Second,
	})
	if s.False != 0 || s.Duplicates != 0 || s.SeqGaps != 0 {
		t.Fatalf("false/dup/gaps = %d/%d/%d, want 0", s.False, s.Duplicates, s.SeqGaps)
	}
	if g := s.Groups[groupCallsActive]; g.Changes != 1 || g.Seen != 1 || g.Latency.P95 != 500 {
		t.Errorf("active group = %+v, want B seen in 500 ms (agent was in call A)", g)
	}
	if s.Calls.Changes != 1 {
		t.Errorf("counted %d call changes, want only B (A before, C after the window)", s.Calls.Changes)
	}
}

func TestDecodeEvent(t *testing.T) {
	now := time.Now().UTC()
	data, _ := json.Marshal(schemas.Change[schemas.AgentCalls]{
		Op: schemas.OpUpdate, Key: schemas.Key{Tenant: benchTenant, WorkNo: 1001}, Seq: 3,
		Before: &schemas.AgentCalls{CallIDs: []string{"a"}}, After: &schemas.AgentCalls{CallIDs: []string{"a", "b"}},
		Detected: schemas.Detected{ByPoll: now},
	})
	body, _ := json.Marshal(schemas.Event{Type: schemas.TypeAgentCalls, Data: data})
	o, ok, err := decodeEvent(schemas.AgentCallsSubject(benchTenant, 1001), body, now)
	if err != nil || !ok {
		t.Fatalf("decode: ok=%v err=%v", ok, err)
	}
	if o.WorkNo != 1001 || o.Seq != 3 || len(o.After) != 2 || !o.ByPoll.Equal(now) {
		t.Errorf("decoded %+v", o)
	}
	if _, _, err := decodeEvent("x", []byte("{"), now); err == nil {
		t.Error("garbled body decoded without error")
	}
}

func TestUnknownScenario(t *testing.T) {
	err := run(context.Background(), []string{"--scenario", "nope"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "unknown scenario") {
		t.Fatalf("err = %v, want unknown scenario", err)
	}
}

// TestEndToEnd runs a tiny scenario for real: embedded JetStream, the
// simulator over HTTP, the wired bridge, every baseline.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run")
	}
	var r Result
	out := runScenario(t, []string{
		"--agents", "60", "--signed-in", "0.9", "--calls-per-hour", "600", "--mean-call", "4s",
		"--duration", "7s", "--tail", "2500ms", "--interval", "500ms", "--idle", "2s",
		"--roster", "1s", "--phones", "1s", "--softphone-per-hour", "3600", "--phone-flaps-per-hour", "3600",
		"--concurrency", "8", "--bare-poll", "500ms", "--lookup-duration", "300ms", "--lookup-concurrency", "4",
		"--pub-records", "500",
	}, &r)
	if !strings.Contains(out, "DETECTION") || !strings.Contains(out, "THROUGHPUT") {
		t.Fatalf("no table printed:\n%s", out)
	}
	s := r.Score
	if s.False != 0 || s.Duplicates != 0 {
		t.Errorf("false %d, duplicates %d, want 0 (%v %v)\n%s", s.False, s.Duplicates, s.FalseSample, s.DupSample, out)
	}
	if s.Calls.Changes == 0 || s.Calls.Seen == 0 {
		t.Errorf("no call changes scored: %+v\n%s", s.Calls, out)
	}
	if s.Calls.MissedOther != 0 {
		t.Errorf("missed %d call changes that lasted an interval: %v\n%s", s.Calls.MissedOther, s.Groups, out)
	}
	if r.BarePoll.PerSec <= 0 || r.BarePoll.Errors != 0 {
		t.Errorf("bare poll %+v", r.BarePoll)
	}
	if r.Publish.PublisherRate <= 0 || r.Publish.BareRate <= 0 {
		t.Errorf("publish %+v", r.Publish)
	}
	if lk := r.Lookups; lk.Lookup.Requests == 0 || lk.Echo.Requests == 0 || lk.List.Requests == 0 || lk.Two == nil ||
		lk.Two.Lookup.Requests == 0 || lk.Two.Echo.Requests == 0 || lk.Two.List.Requests == 0 || lk.Lookup.Errors+lk.Two.Lookup.Errors != 0 {
		t.Errorf("lookups %+v, two instances %+v", r.Lookups, r.Lookups.Two)
	}
	if r.Bridge.Tracked != 60 || r.Bridge.Polls == 0 {
		t.Errorf("bridge phase %+v", r.Bridge)
	}
	if r.Machine.CPUs == 0 || r.Options.Agents != 60 {
		t.Errorf("machine/options not recorded: %+v %+v", r.Machine, r.Options)
	}
}

// runScenario runs cecbench with args and --json, decodes the JSON into v
// and returns the tables it printed.
func runScenario(t *testing.T, args []string, v any) string {
	t.Helper()
	jsonFile := filepath.Join(t.TempDir(), "out.json")
	var out, progress bytes.Buffer
	if err := run(t.Context(), append(args, "--json", jsonFile), &out, &progress); err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("json: %v", err)
	}
	return out.String()
}

func TestMain(m *testing.M) {
	if code, ok := childMain(); ok { // the chaos drill's helper processes
		os.Exit(code)
	}
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// A phone that is suspended and re-registered within one interval: the
// bridge sees neither change, and both count as missed because too short,
// not the return to the old state as a missed change of its own.
func TestScoreRevertAfterShortExcursion(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	truth := []cecsim.Change{
		{Seq: 1, At: at(3000), Kind: cecsim.KindPhoneStatus, PhoneNum: "88881001", Before: "0", After: "1"},
		{Seq: 2, At: at(5000), Kind: cecsim.KindPhoneStatus, PhoneNum: "88881001", Before: "1", After: "0"},
	}
	events := []observed{
		{Subject: schemas.PhoneStateSubject(benchTenant, "88881001"), Type: schemas.TypePhoneState, Op: schemas.OpSnapshot,
			Seq: 1, Phone: "88881001", After: []string{"0"}, ByPoll: at(100)},
	}
	s := score(scoreInput{
		Truth: truth, Events: events, WindowStart: t0, WindowEnd: at(60000),
		CallsInterval: time.Second, IdleInterval: 15 * time.Second, ActiveWindow: time.Minute,
		RosterInterval: 10 * time.Second, PhonesInterval: 10 * time.Second,
	})
	if p := s.Groups[groupPhone]; p.Changes != 2 || p.MissedShort != 2 || p.MissedOther != 0 || p.Long != 0 {
		t.Fatalf("phone group = %+v, want both changes missed as short, and no long change", p)
	}
}

// The cluster scenario runs the bridge on one server and on a three-node
// cluster whose servers it kills, and finds nothing lost, doubled or
// forked in either.
func TestClusterScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run on a three-node cluster")
	}
	var r ClusterResult
	out := runScenario(t, []string{
		"--scenario", "cluster", "--agents", "40", "--signed-in", "0.9", "--calls-per-hour", "600", "--mean-call", "4s",
		"--duration", "5s", "--tail", "2s", "--interval", "500ms", "--idle", "1s", "--roster", "1s", "--phones", "1s",
		"--concurrency", "8",
	}, &r)
	if r.Single.Nodes != 1 || r.Cluster.Nodes != 3 || r.Cluster.Replicas != 3 {
		t.Fatalf("runs %+v / %+v", r.Single, r.Cluster)
	}
	// Per server: the SIGKILL, the events stream led again, the restart.
	if len(r.Cluster.KillGaps) != 2 || len(r.Cluster.Faults) != 6 {
		t.Errorf("the cluster run did not kill and restart two servers: %v", r.Cluster.Faults)
	}
	if len(r.Cluster.LeaderGaps) != 2 || slices.Min(r.Cluster.LeaderGaps) < 0 {
		t.Errorf("leader after each kill %v, want one for each", r.Cluster.LeaderGaps)
	}
	for _, run := range []ClusterRun{r.Single, r.Cluster} {
		h := run.History
		if h.Events == 0 || !h.Clean() || run.Lost != 0 || run.Score.False != 0 {
			t.Errorf("%d node(s): history %+v, lost %d %v, false %d\n%s", run.Nodes, h, run.Lost, run.LostSample, run.Score.False, out)
		}
	}
	if !strings.Contains(out, "3-node cluster (R3)") {
		t.Errorf("no table printed:\n%s", out)
	}
}
