package poller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
	"github.com/cecbridge/cecbridge/schemas"
)

func TestSnapshotThenScriptedChanges(t *testing.T) {
	f := startFixture(t, 10, nil)
	agents := f.sim.Agents()
	testwait.Until(t, "a calls snapshot for every agent", func() bool {
		for _, w := range agents {
			if len(f.callsOf(w)) == 0 {
				return false
			}
		}
		return true
	})
	for _, w := range agents {
		evs := f.sink.on(schemas.AgentCallsSubject(tenantName, w))
		if ch := calls(t, evs[0]); ch.Op != schemas.OpSnapshot || ch.Seq != 1 || ch.PrevID != "" || ch.Before != nil {
			t.Fatalf("agent %d first event = %+v, want a snapshot with seq 1", w, ch)
		}
		if sp := f.sink.on(schemas.AgentSoftphoneSubject(tenantName, w)); len(sp) != 1 {
			t.Fatalf("agent %d: %d softphone events, want 1 snapshot", w, len(sp))
		}
	}

	const agentNo = 1003
	id, err := f.sim.StartCall(agentNo)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call to appear", func() bool { return len(f.callsOf(agentNo)) == 2 })
	if err := f.sim.EndCall(agentNo, id); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call to end", func() bool { return len(f.callsOf(agentNo)) == 3 })
	got := f.callsOf(agentNo)
	want := [][]string{{}, {id}, {}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("calls of %d = %v, want %v", agentNo, got, want)
	}
	evs := f.sink.on(schemas.AgentCallsSubject(tenantName, agentNo))
	for i := 1; i < len(evs); i++ {
		ch := calls(t, evs[i])
		if ch.Op != schemas.OpUpdate || ch.PrevID != evs[i-1].ID || ch.Detected.AfterPoll == nil || ch.Detected.AfterPoll.After(ch.Detected.ByPoll) {
			t.Errorf("event %d = %+v: want an update chained to %s with after_poll <= by_poll", i, ch, evs[i-1].ID)
		}
	}

	// Softphone, phone state, roster changes.
	if err := f.sim.SetSoftphone(1004, "77770001", "newacct"); err != nil {
		t.Fatal(err)
	}
	phones := f.sim.Phones()
	num := phones[0].PhoneNum
	if err := f.sim.SetPhoneStatus(num, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.RemoveAgent(1005); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.AddAgent(5000); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "softphone, phone and roster changes", func() bool {
		return len(f.sink.on(schemas.AgentSoftphoneSubject(tenantName, 1004))) == 2 &&
			len(f.sink.on(schemas.PhoneStateSubject(tenantName, num))) == 2 &&
			len(f.sink.on(schemas.AgentSoftphoneSubject(tenantName, 1005))) == 2 &&
			len(f.sink.on(schemas.AgentSoftphoneSubject(tenantName, 5000))) == 1
	})
	var sp schemas.Change[schemas.AgentSoftphone]
	_ = json.Unmarshal(f.sink.on(schemas.AgentSoftphoneSubject(tenantName, 1004))[1].Data, &sp)
	if sp.Op != schemas.OpUpdate || sp.After.SIPAccount != "77770001" || sp.After.AccountCode != "newacct" {
		t.Errorf("softphone update = %+v", sp)
	}
	var gone schemas.Change[schemas.AgentSoftphone]
	_ = json.Unmarshal(f.sink.on(schemas.AgentSoftphoneSubject(tenantName, 1005))[1].Data, &gone)
	if gone.Op != schemas.OpDelete || gone.After != nil || gone.Before == nil {
		t.Errorf("removed agent's softphone event = %+v, want a delete", gone)
	}
	var added schemas.Change[schemas.AgentSoftphone]
	_ = json.Unmarshal(f.sink.on(schemas.AgentSoftphoneSubject(tenantName, 5000))[0].Data, &added)
	if added.Op != schemas.OpCreate {
		t.Errorf("added agent's first event op = %s, want create", added.Op)
	}
	var ph schemas.Change[schemas.PhoneState]
	_ = json.Unmarshal(f.sink.on(schemas.PhoneStateSubject(tenantName, num))[1].Data, &ph)
	if ph.After.Status != schemas.PhoneSuspended || ph.Before.Status != schemas.PhoneRegistered {
		t.Errorf("phone change = %+v", ph)
	}
	testwait.Until(t, "a heartbeat", func() bool {
		return len(f.sink.on(schemas.BridgeSubject(tenantName, schemas.BridgeHeartbeat))) > 0
	})
	// The first heartbeat follows the first complete roster and phone walk
	// and vouches for both; none came before them claiming anything.
	var hb schemas.Heartbeat
	if err := json.Unmarshal(f.sink.on(schemas.BridgeSubject(tenantName, schemas.BridgeHeartbeat))[0].Data, &hb); err != nil {
		t.Fatal(err)
	}
	if !hb.RosterVisible || !hb.PhonesVisible || hb.AgentsTracked == 0 || hb.NotVisible != "" {
		t.Errorf("first heartbeat = %+v, want roster and phones visible with agents tracked", hb)
	}
	validateAll(t, f.sink.records())
}

// A failing upstream never reports calls as ended: the agents concerned are
// marked not visible, and visible again when the upstream recovers.
func TestFaultsProduceNoFalseEventsAndReportVisibility(t *testing.T) {
	f := startFixture(t, 6, nil)
	const agentNo = 1002
	id, err := f.sim.StartCall(agentNo)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call to be seen", func() bool {
		c := f.callsOf(agentNo)
		return len(c) > 0 && slices.Equal(c[len(c)-1], []string{id})
	})
	before := len(f.callsOf(agentNo))

	visibility := func(state, scope string) int {
		n := 0
		for _, ev := range f.sink.on(schemas.BridgeSubject(tenantName, schemas.BridgeVisibility)) {
			var v schemas.Visibility
			_ = json.Unmarshal(ev.Data, &v)
			if v.State == state && v.Scope == scope {
				n++
			}
		}
		return n
	}
	for _, fault := range []cecsim.Fault{
		{Endpoint: "allcallinfoEx", Kind: cecsim.FaultHTTPStatus, Status: 503},
		{Endpoint: "allcallinfoEx", Kind: cecsim.FaultGarbled},
		{Endpoint: "allcallinfoEx", Kind: cecsim.FaultTruncated},
		{Endpoint: "allcallinfoEx", Kind: cecsim.FaultVendorCode, Code: "100-007"},
	} {
		lost, restored := visibility(schemas.VisibilityLost, schemas.ScopeCalls), visibility(schemas.VisibilityRestored, schemas.ScopeCalls)
		f.sim.Inject(fault)
		testwait.Until(t, fault.Kind.String()+": agents reported not visible", func() bool {
			return visibility(schemas.VisibilityLost, schemas.ScopeCalls) > lost
		})
		f.sim.ClearFaults()
		testwait.Until(t, fault.Kind.String()+": agents visible again", func() bool {
			return visibility(schemas.VisibilityRestored, schemas.ScopeCalls) > restored
		})
	}
	// Roster and phones failures keep the softphone and phone states.
	f.sim.Inject(cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultGarbled})
	f.sim.Inject(cecsim.Fault{Endpoint: "queryPhone", Kind: cecsim.FaultHTTPStatus, Status: 500})
	testwait.Until(t, "roster and phones reported not visible", func() bool {
		return visibility(schemas.VisibilityLost, schemas.ScopeSoftphone) > 0 && visibility(schemas.VisibilityLost, schemas.ScopePhones) > 0
	})
	f.sim.ClearFaults()
	// A session kicked out comes back by itself.
	f.sim.KickOut(1001)
	testwait.Until(t, "roster and phones visible again and the session back", func() bool {
		return visibility(schemas.VisibilityRestored, schemas.ScopeSoftphone) > 0 &&
			visibility(schemas.VisibilityRestored, schemas.ScopePhones) > 0 && f.session.Ready()
	})
	if got := f.callsOf(agentNo); len(got) != before {
		t.Fatalf("faults produced call events for agent %d: %v", agentNo, got)
	}
	for _, rec := range f.sink.records() {
		var ev schemas.Event
		_ = json.Unmarshal(rec.Body, &ev)
		if ev.Type == schemas.TypeAgentSoftphone || ev.Type == schemas.TypePhoneState || ev.Type == schemas.TypeAgentCalls {
			var ch schemas.Change[json.RawMessage]
			_ = json.Unmarshal(ev.Data, &ch)
			if ch.Op == schemas.OpDelete {
				t.Errorf("false deletion on %s", rec.Subject)
			}
		}
	}
	validateAll(t, f.sink.records())
}

// A refused event leaves the old state as the baseline, so the change is
// emitted once the sink accepts again.
func TestRefusedEventIsDetectedAgain(t *testing.T) {
	f := startFixture(t, 3, nil)
	testwait.Until(t, "snapshots", func() bool { return len(f.callsOf(1002)) == 1 })
	f.sink.setRefuse(true)
	id, err := f.sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "a refusal", func() bool {
		f.sink.mu.Lock()
		defer f.sink.mu.Unlock()
		return f.sink.refused > 0
	})
	f.sink.setRefuse(false)
	testwait.Until(t, "the call once accepted", func() bool { return len(f.callsOf(1002)) == 2 })
	if got := f.callsOf(1002)[1]; !slices.Equal(got, []string{id}) {
		t.Fatalf("after refusal got %v, want [%s]", got, id)
	}
}

// A phone whose snapshot the sink refused in the first walk is still a
// snapshot when a later walk gets it accepted: it was there all along, no
// phone was added.
func TestPhoneSnapshotRefusedInTheFirstWalkStaysASnapshot(t *testing.T) {
	sim := cecsimtest.Start(t, cecsim.Config{Agents: 3, LongPollHold: 100 * time.Millisecond})
	f := startPollerWith(t, sim, nil, pollerOpts{refuse: true})
	// The second walk begins once the first has been applied.
	testwait.Until(t, "a phone walk refused", func() bool { return f.sim.Counters()["queryPhone"] >= 2 })
	f.sink.setRefuse(false)
	num := f.sim.Phones()[0].PhoneNum
	testwait.Until(t, "the phone's first event", func() bool { return len(f.sink.on(schemas.PhoneStateSubject(tenantName, num))) == 1 })
	var ch schemas.Change[schemas.PhoneState]
	if err := json.Unmarshal(f.sink.on(schemas.PhoneStateSubject(tenantName, num))[0].Data, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.Op != schemas.OpSnapshot || ch.Seq != 1 {
		t.Fatalf("first phone event %s seq %d, want snapshot seq 1", ch.Op, ch.Seq)
	}
	validateAll(t, f.sink.records())
}

// After a restart the state comes from the stream: unchanged entities emit
// nothing, changed ones continue their sequences.
func TestRestoreEmitsOnlyRealChanges(t *testing.T) {
	f := startFixture(t, 5, nil)
	testwait.Until(t, "snapshots", func() bool {
		for _, w := range f.sim.Agents() {
			if len(f.callsOf(w)) != 1 || len(f.sink.on(schemas.AgentSoftphoneSubject(tenantName, w))) != 1 {
				return false
			}
		}
		return true
	})
	num := f.sim.Phones()[0].PhoneNum
	testwait.Until(t, "phone snapshot", func() bool { return len(f.sink.on(schemas.PhoneStateSubject(tenantName, num))) == 1 })
	f.stop()
	last := map[string]schemas.Record{}
	for _, rec := range f.sink.records() {
		last[rec.Subject] = rec
	}
	restore := slices.Collect(func(yield func(schemas.Record) bool) {
		for _, r := range last {
			if !yield(r) {
				return
			}
		}
	})
	id, err := f.sim.StartCall(1004)
	if err != nil {
		t.Fatal(err)
	}
	g := startPoller(t, f.sim, restore)
	testwait.Until(t, "the call after restart", func() bool { return len(g.callsOf(1004)) == 1 })
	ch := calls(t, g.sink.on(schemas.AgentCallsSubject(tenantName, 1004))[0])
	if ch.Op != schemas.OpUpdate || ch.Seq != 2 || !slices.Equal(ch.After.CallIDs, []string{id}) {
		t.Fatalf("first event after restart = %+v, want update seq 2 with [%s]", ch, id)
	}
	// Let every agent be polled a few times, then check nothing else came.
	testwait.Until(t, "a heartbeat after restart", func() bool {
		return len(g.sink.on(schemas.BridgeSubject(tenantName, schemas.BridgeHeartbeat))) >= 2
	})
	for _, rec := range g.sink.records() {
		ps, _ := schemas.ParseSubject(rec.Subject)
		if ps.Entity == "bridge" || rec.Subject == schemas.AgentCallsSubject(tenantName, 1004) {
			continue
		}
		t.Errorf("restart re-announced %s (seq %d)", rec.Subject, rec.Seq)
	}
}

// With every agent in flight the queues are empty; a finished poll must
// wake the dispatcher for the agent's next turn instead of leaving it to
// the next roster poll.
func TestFewAgentsArePolledAtTheirInterval(t *testing.T) {
	sim := cecsimtest.Start(t, cecsim.Config{Agents: 2, LongPollHold: 100 * time.Millisecond})
	client, err := cec.New(cec.Config{FabricURL: sim.URL(), GatewayURL: sim.URL(), AppKey: "app-key", AppSecret: "app-secret"})
	if err != nil {
		t.Fatal(err)
	}
	sess := client.NewSession(cec.SessionConfig{AgentID: 1001, Password: "agent-pass"})
	rec := newRecorder(t)
	tn, err := poller.New(poller.Config{
		Tenant: tenantName, Directory: poller.FabricDirectory{Client: client},
		Monitors: []poller.Monitor{{Source: sess}}, Sink: rec, History: rec,
		CallsInterval: 20 * time.Millisecond, IdleInterval: 20 * time.Millisecond,
		RosterInterval: time.Hour, PhonesInterval: time.Hour, HeartbeatInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = sess.Run(ctx); done <- struct{}{} }()
	go func() { _ = tn.Run(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()
	// Two agents every 20 ms: 40 polls take about 400 ms. Without a wake
	// after each poll they would wait for the hourly roster.
	testwait.Until(t, "40 call-ID polls", func() bool { return sim.Counters()["allcallinfoEx"] >= 40 })
}
