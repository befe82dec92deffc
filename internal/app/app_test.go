package app_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// Scripted changes come out as exactly the expected events, in order; the
// injected faults produce visibility events and no false event; a NATS
// restart mid-run loses and doubles nothing; lookups agree with the truth.
func TestBridgeEndToEnd(t *testing.T) {
	e := newEnv(t, 12)
	e.start(t)
	e.events = readStream(t, e.js)
	e.waitSnapshots(t)

	// Scripted calls.
	id1, err := e.sim.StartCall(1003)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "call 1 seen", func() bool { return len(e.events.calls(t, 1003)) == 2 })
	id2, err := e.sim.StartCall(1003)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "call 2 seen", func() bool { return len(e.events.calls(t, 1003)) == 3 })
	if err := e.sim.EndCall(1003, id1); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "call 1 ended", func() bool { return len(e.events.calls(t, 1003)) == 4 })
	both := []string{id1, id2}
	slices.Sort(both)
	want := [][]string{{}, {id1}, both, {id2}}
	if got := e.events.calls(t, 1003); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("agent 1003 calls history = %v, want %v", got, want)
	}

	// Lookups answer from the state view, consistent with the stream.
	last := e.events.on(schemas.AgentCallsSubject(tenant, 1003))
	var resp schemas.AgentCallsResponse
	lookup(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{
		WorkNo: 1003, ReadOptions: schemas.ReadOptions{MinSeq: last[len(last)-1].seq},
	}, &resp)
	if !slices.Equal(resp.CallIDs, []string{id2}) || resp.Seq != 4 {
		t.Fatalf("lookup answered %+v, want [%s] at seq 4", resp, id2)
	}

	// Faults: no false event; visibility lost and restored.
	callsBefore := len(e.events.calls(t, 1003))
	for _, f := range []cecsim.Fault{
		{Endpoint: "allcallinfoEx", Kind: cecsim.FaultHTTPStatus, Status: 502},
		{Endpoint: "allcallinfoEx", Kind: cecsim.FaultGarbled},
	} {
		lost := e.events.visibility(t, schemas.VisibilityLost, schemas.ScopeCalls)
		restored := e.events.visibility(t, schemas.VisibilityRestored, schemas.ScopeCalls)
		e.sim.Inject(f)
		testwait.Until(t, "visibility lost", func() bool { return e.events.visibility(t, schemas.VisibilityLost, schemas.ScopeCalls) > lost })
		e.sim.ClearFaults()
		testwait.Until(t, "visibility restored", func() bool {
			return e.events.visibility(t, schemas.VisibilityRestored, schemas.ScopeCalls) > restored
		})
	}
	// A kicked-out session signs in again by itself (it may be back before
	// any poll noticed, so visibility events are not required here) and a
	// token revoked behind the bridge's back is replaced.
	e.sim.KickOut(1001)
	e.sim.RevokeTokens()
	softphoneBefore := len(e.events.on(schemas.AgentSoftphoneSubject(tenant, 1004)))
	if err := e.sim.SetSoftphone(1004, "99990001", "acct-new"); err != nil {
		t.Fatal(err)
	}
	idK, err := e.sim.StartCall(1006)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "changes seen after kick-out and token revocation", func() bool {
		c := e.events.calls(t, 1006)
		return len(e.events.on(schemas.AgentSoftphoneSubject(tenant, 1004))) == softphoneBefore+1 &&
			len(c) == 2 && slices.Equal(c[1], []string{idK})
	})
	testwait.Until(t, "every agent visible again", func() bool {
		return e.events.visibility(t, schemas.VisibilityRestored, schemas.ScopeCalls) == e.events.visibility(t, schemas.VisibilityLost, schemas.ScopeCalls)
	})
	if got := len(e.events.calls(t, 1003)); got != callsBefore {
		t.Fatalf("faults produced %d call events for 1003", got-callsBefore)
	}

	// A NATS server restart mid-run: changes made while it is down arrive
	// exactly once, in order.
	e.srv.Shutdown()
	id3, err := e.sim.StartCall(1005)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetPhoneStatus(e.sim.Phones()[2].PhoneNum, 1); err != nil {
		t.Fatal(err)
	}
	e.srv.Start()
	testwait.Until(t, "changes made during the outage", func() bool {
		c := e.events.calls(t, 1005)
		return len(c) == 2 && slices.Equal(c[1], []string{id3})
	})
	if err := e.sim.EndCall(1005, id3); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call ending after the outage", func() bool { return len(e.events.calls(t, 1005)) == 3 })

	// Nothing false anywhere: every call event matches the truth.
	truth := map[string]bool{}
	for _, c := range e.sim.Truth(0) {
		if c.Kind == cecsim.KindCallAdded || c.Kind == cecsim.KindCallRemoved {
			truth[fmt.Sprintf("%s %d %s", c.Kind, c.WorkNo, c.CallID)] = true
		}
	}
	for _, s := range e.events.all() {
		if s.ev.Type != schemas.TypeAgentCalls {
			continue
		}
		var ch schemas.Change[schemas.AgentCalls]
		_ = json.Unmarshal(s.ev.Data, &ch)
		if ch.Op == schemas.OpSnapshot {
			continue
		}
		var before, after []string
		if ch.Before != nil {
			before = ch.Before.CallIDs
		}
		if ch.After != nil {
			after = ch.After.CallIDs
		}
		for _, id := range after {
			if !slices.Contains(before, id) && !truth[fmt.Sprintf("%s %d %s", cecsim.KindCallAdded, ch.Key.WorkNo, id)] {
				t.Errorf("false call start %s on %d", id, ch.Key.WorkNo)
			}
		}
		for _, id := range before {
			if !slices.Contains(after, id) && !truth[fmt.Sprintf("%s %d %s", cecsim.KindCallRemoved, ch.Key.WorkNo, id)] {
				t.Errorf("false call end %s on %d", id, ch.Key.WorkNo)
			}
		}
	}
	e.events.checkHistory(t)
}

// A bridge restarted on an existing stream re-announces nothing that did
// not change and continues every sequence.
func TestRestartEmitsOnlyRealChanges(t *testing.T) {
	e := newEnv(t, 8)
	stop := e.start(t)
	e.events = readStream(t, e.js)
	e.waitSnapshots(t)
	testwait.Until(t, "phones", func() bool {
		for _, p := range e.sim.Phones() {
			if len(e.events.on(schemas.PhoneStateSubject(tenant, p.PhoneNum))) == 0 {
				return false
			}
		}
		return true
	})
	stop()
	before := len(e.events.all())
	id, err := e.sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	e.start(t)
	testwait.Until(t, "the call made while the bridge was down", func() bool { return len(e.events.calls(t, 1002)) == 2 })
	testwait.Until(t, "a heartbeat from the new bridge", func() bool {
		n := 0
		for _, s := range e.events.all()[before:] {
			if s.ev.Type == schemas.TypeBridgeHeartbeat {
				n++
			}
		}
		return n >= 2
	})
	for _, s := range e.events.all()[before:] {
		if s.ev.Type == schemas.TypeBridgeHeartbeat || s.ev.Type == schemas.TypeBridgeVisibility {
			continue
		}
		if s.subject != schemas.AgentCallsSubject(tenant, 1002) {
			t.Errorf("restart re-announced %s", s.subject)
		}
	}
	if got := e.events.calls(t, 1002); !slices.Equal(got[1], []string{id}) {
		t.Fatalf("after restart: %v", got)
	}
	e.events.checkHistory(t)
}

// lookup asks one of the tenant's lookup endpoints a request that must
// succeed.
func lookup(t *testing.T, nc *nats.Conn, endpoint string, req, resp any) {
	t.Helper()
	schematest.LookupOK(t, nc, tenant, endpoint, req, resp, 5*time.Second)
}

// Every lookup endpoint agrees with the simulator's truth after scripted
// changes, reading its own writes with min_seq.
func TestLookupsMatchTheSimulator(t *testing.T) {
	e := newEnv(t, 10)
	e.start(t)
	e.events = readStream(t, e.js)
	e.waitSnapshots(t)

	id, err := e.sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetSoftphone(1003, "77773003", "acct-moved"); err != nil {
		t.Fatal(err)
	}
	a4, _ := e.sim.Agent(1004)
	if err := e.sim.SetPhoneStatus(a4.SIPAccount, 1); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the scripted changes in the stream", func() bool {
		return len(e.events.calls(t, 1002)) == 2 &&
			len(e.events.on(schemas.AgentSoftphoneSubject(tenant, 1003))) == 2 &&
			len(e.events.on(schemas.PhoneStateSubject(tenant, a4.SIPAccount))) == 2
	})
	all := e.events.all()
	last := all[len(all)-1].seq
	ro := schemas.ReadOptions{MinSeq: last}

	var calls schemas.AgentCallsResponse
	lookup(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1002, ReadOptions: ro}, &calls)
	if !slices.Equal(calls.CallIDs, e.sim.AgentCalls(1002)) || !slices.Equal(calls.CallIDs, []string{id}) || calls.StreamSeq < last || !calls.Visible {
		t.Errorf("agent.calls 1002 = %+v, simulator has %v", calls, e.sim.AgentCalls(1002))
	}
	var live schemas.AgentCallsResponse
	lookup(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1002, MaxAge: "0s"}, &live)
	if !live.Live || !slices.Equal(live.CallIDs, []string{id}) {
		t.Errorf("agent.calls with max_age 0s = %+v, want a live answer [%s]", live, id)
	}

	var sp schemas.AgentSoftphoneResponse
	lookup(t, e.nc, schemas.LookupAgentSoftphone, schemas.AgentSoftphoneRequest{WorkNo: 1003, ReadOptions: ro}, &sp)
	a3, _ := e.sim.Agent(1003)
	if sp.SIPAccount != a3.SIPAccount || sp.AccountCode != a3.AccountCode || sp.SIPServerIP == "" || sp.SIPServerPort == 0 {
		t.Errorf("agent.softphone 1003 = %+v, simulator has %+v", sp, a3)
	}
	var ph schemas.PhoneStateResponse
	lookup(t, e.nc, schemas.LookupPhoneState, schemas.PhoneStateRequest{PhoneNum: a4.SIPAccount, ReadOptions: ro}, &ph)
	if ph.Status != schemas.PhoneSuspended || ph.StatusCode != 1 {
		t.Errorf("phone.state %s = %+v, want suspended", a4.SIPAccount, ph)
	}
	var acct schemas.AgentByAccountResponse
	a5, _ := e.sim.Agent(1005)
	if a5.AccountCode != "" {
		lookup(t, e.nc, schemas.LookupAgentByAccount, schemas.AgentByAccountRequest{Account: a5.AccountCode}, &acct)
		if acct.WorkNo != 1005 {
			t.Errorf("agent.by_account %s = %+v, want work_no 1005", a5.AccountCode, acct)
		}
	}
	inCall := true
	var agents schemas.AgentsListResponse
	lookup(t, e.nc, schemas.LookupAgentsList, schemas.AgentsListRequest{InCall: &inCall, MinSeq: last}, &agents)
	var busy []int
	for _, a := range agents.Agents {
		busy = append(busy, a.WorkNo)
		if !a.Visible {
			t.Errorf("agents.list reports %d not visible while nothing failed", a.WorkNo)
		}
	}
	if !slices.Equal(busy, []int{1002}) {
		t.Errorf("agents.list in_call = %v, want [1002]", busy)
	}
	registered := false
	var phones schemas.PhonesListResponse
	lookup(t, e.nc, schemas.LookupPhonesList, schemas.PhonesListRequest{Registered: &registered, MinSeq: last}, &phones)
	var suspended []string
	for _, p := range phones.Phones {
		suspended = append(suspended, p.PhoneNum)
	}
	var wantSuspended []string
	for _, p := range e.sim.Phones() {
		if p.Status == 1 {
			wantSuspended = append(wantSuspended, p.PhoneNum)
		}
	}
	slices.Sort(wantSuspended)
	if !slices.Equal(suspended, wantSuspended) {
		t.Errorf("phones.list registered=false = %v, simulator has %v", suspended, wantSuspended)
	}
	// This tenant has no cms block, so no agent state: 404, saying why.
	if a := rawLookup(t, e.nc, schemas.LookupSubject(tenant, schemas.LookupAgentState), schemas.AgentStateRequest{WorkNo: 1002}, true); !strings.Contains(a, "404") || !strings.Contains(a, "CMS sweep") {
		t.Errorf("agent.state without CMS answered\n%s", a)
	}
}

// Two instances on one tenant: one polls, the other stands by and answers
// view lookups; when the holder stops, the standby takes over and the
// history goes on without a duplicate or a hole.
func TestStandbyTakesOver(t *testing.T) {
	e := newEnv(t, 6)
	e.cfg.Lease.TTL = 2 * time.Second
	stopA := e.start(t)
	e.events = readStream(t, e.js)
	e.waitSnapshots(t)
	e.start(t) // b: a standby while a holds the lease

	id, err := e.sim.StartCall(1004)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call seen by the holder", func() bool { return len(e.events.calls(t, 1004)) == 2 })
	// Only one instance polls: the simulator sees one monitoring session.
	if n := e.sim.Counters()["forcelogin"]; n != 0 {
		t.Fatalf("the standby signed in over the holder (%d forcelogins)", n)
	}

	stopA()
	if err := e.sim.EndCall(1004, id); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the standby to take over and see the call end", func() bool { return len(e.events.calls(t, 1004)) == 3 })
	if got := e.events.calls(t, 1004); fmt.Sprint(got) != fmt.Sprint([][]string{{}, {id}, {}}) {
		t.Fatalf("history across the handover = %v", got)
	}
	e.events.checkHistory(t)
}
