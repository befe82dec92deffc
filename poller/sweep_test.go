package poller_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
	"github.com/cecbridge/cecbridge/schemas"
)

// sweepFixture is a poller sweeping a simulator of n agents, with
// per-agent polling of idle agents slowed to once an hour: whatever is
// seen quickly on an idle agent, the sweep saw.
func sweepFixture(t *testing.T, n int, simCfg cecsim.Config, o pollerOpts) *fixture {
	t.Helper()
	simCfg.Agents = n
	simCfg.LongPollHold = 100 * time.Millisecond
	sim := cecsimtest.Start(t, simCfg)
	o.sweep = true
	if o.idle == 0 {
		o.idle = time.Hour
	}
	return startPollerWith(t, sim, nil, o)
}

// changesOn decodes the events recorded on subject.
func changesOn[T any](t *testing.T, r *recorder, subject string) []schemas.Change[T] {
	t.Helper()
	var out []schemas.Change[T]
	for _, ev := range r.on(subject) {
		var ch schemas.Change[T]
		if err := json.Unmarshal(ev.Data, &ch); err != nil {
			t.Fatal(err)
		}
		out = append(out, ch)
	}
	return out
}

func callsV2(t *testing.T, r *recorder, workNo int) []schemas.Change[schemas.AgentCallsV2] {
	t.Helper()
	return changesOn[schemas.AgentCallsV2](t, r, schemas.AgentCallsV2Subject(tenantName, workNo))
}

func agentStates(t *testing.T, r *recorder, workNo int) []schemas.Change[schemas.AgentState] {
	t.Helper()
	return changesOn[schemas.AgentState](t, r, schemas.AgentStateSubject(tenantName, workNo))
}

func allSwept(f *fixture, n int) func() bool {
	return func() bool { return f.tenant.Stats().SweptAgents == n }
}

// A call that starts on an idle agent is seen by the next sweep, ringing
// (alerting) on calls_v2 and on the agent's calls, without a single
// per-agent poll: the sweep reports on every agent.
func TestSweepSeesACallRingingOnAnIdleAgent(t *testing.T) {
	f := sweepFixture(t, 20, cecsim.Config{}, pollerOpts{})
	testwait.Until(t, "every agent reported on by the sweep", allSwept(f, 20))
	polls := f.sim.Counters()["allcallinfoEx"]
	id, err := f.sim.StartCall(1007)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call on agent 1007", func() bool { return len(f.callsOf(1007)) == 2 })
	if got := f.callsOf(1007)[1]; !slices.Equal(got, []string{id}) {
		t.Fatalf("calls %v, want [%s]", got, id)
	}
	v2 := callsV2(t, f.sink, 1007)
	last := v2[len(v2)-1]
	if len(last.After.Calls) != 1 || last.After.Calls[0].ID != id || last.After.Calls[0].Status != "alerting" || last.Detected.Source != schemas.SourceCMS {
		t.Fatalf("calls_v2 %+v, want the call alerting, seen by CMS", last)
	}
	if n := f.sim.Counters()["allcallinfoEx"] - polls; n != 0 {
		t.Fatalf("%d per-agent polls while the sweep covered every agent", n)
	}
	// The call is answered: calls_v2 follows, calls (IDs) does not change.
	if err := f.sim.SetCallStatus(1007, id, cecsim.CallTalking); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call talking on calls_v2", func() bool {
		v2 := callsV2(t, f.sink, 1007)
		return v2[len(v2)-1].After.Calls[0].Status == "talking"
	})
	if n := len(f.callsOf(1007)); n != 2 {
		t.Fatalf("%d calls events for a status change, want none more", n)
	}
	validateAll(t, f.sink.records())
}

// A chunk that fails hands its agents to per-agent polling, which keeps
// seeing calls; when the sweep answers again it takes them back.
func TestFailedSweepChunkHandsItsAgentsToPerAgentPolling(t *testing.T) {
	f := sweepFixture(t, 10, cecsim.Config{}, pollerOpts{idle: 200 * time.Millisecond})
	testwait.Until(t, "every agent swept", allSwept(f, 10))
	f.sim.Inject(cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultHTTPStatus, Status: 502})
	testwait.Until(t, "every agent polled one by one", allSwept(f, 0))
	if st := f.tenant.Stats(); st.Sweep != poller.SweepPartial {
		t.Fatalf("sweep state %q, want %q", st.Sweep, poller.SweepPartial)
	}
	id, err := f.sim.StartCall(1003)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call seen by per-agent polling", func() bool { return len(f.callsOf(1003)) == 2 })
	testwait.Until(t, "every agent visible through its polls", func() bool {
		st := f.tenant.Stats()
		return st.AgentsVisible == st.AgentsTracked
	})
	f.sim.ClearFaults()
	testwait.Until(t, "the sweep back on every agent", allSwept(f, 10))
	if got := f.callsOf(1003); len(got) != 2 || !slices.Equal(got[1], []string{id}) {
		t.Fatalf("calls of 1003 = %v: the hand-over back and forth changed something", got)
	}
	validateAll(t, f.sink.records())
}

// CMS not licensed: the sweep is unavailable (said once), every agent is
// polled one by one, nothing false is published; once CMS answers again
// the sweep resumes.
func TestCMSNotLicensedFallsBackToPerAgentPollingAndResumes(t *testing.T) {
	f := sweepFixture(t, 6, cecsim.Config{}, pollerOpts{idle: 200 * time.Millisecond})
	testwait.Until(t, "every agent swept", allSwept(f, 6))
	f.sim.SetCMSLicensed(false)
	testwait.Until(t, "the sweep unavailable", func() bool {
		st := f.tenant.Stats()
		return st.Sweep == poller.SweepUnavailable && st.SweptAgents == 0
	})
	id, err := f.sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call seen without CMS", func() bool { return len(f.callsOf(1002)) == 2 })
	f.sim.SetCMSLicensed(true)
	testwait.Until(t, "the sweep back", func() bool {
		st := f.tenant.Stats()
		return st.Sweep == poller.SweepOK && st.SweptAgents == 6
	})
	if err := f.sim.EndCall(1002, id); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call's end", func() bool { return len(f.callsOf(1002)) == 3 })
	if got := f.callsOf(1002); !slices.Equal(got[1], []string{id}) || len(got[2]) != 0 {
		t.Fatalf("calls of 1002 = %v", got)
	}
	validateAll(t, f.sink.records())
}

// A wrong secret key: CMS refuses the signature, the sweep says so and
// every agent is polled one by one.
func TestWrongCMSKeyIsReportedAndFallsBack(t *testing.T) {
	f := sweepFixture(t, 4, cecsim.Config{}, pollerOpts{cmsSK: "not-the-key", idle: 200 * time.Millisecond})
	testwait.Until(t, "the sweep unavailable", func() bool { return f.tenant.Stats().Sweep == poller.SweepUnavailable })
	if st := f.tenant.Stats(); st.SweptAgents != 0 || st.SweepReason == "" {
		t.Fatalf("stats %+v", st)
	}
	if _, err := f.sim.StartCall(1004); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call seen without CMS", func() bool { return len(f.callsOf(1004)) == 2 })
	for _, rec := range f.sink.records() {
		if ps, _ := schemas.ParseSubject(rec.Subject); ps.Kind == schemas.KindAgentState || ps.Kind == schemas.KindAgentCallsV2 {
			var ev schemas.Event
			_ = json.Unmarshal(rec.Body, &ev)
			if json.Valid(ev.Data) && containsSource(ev.Data, schemas.SourceCMS) {
				t.Fatalf("an event from a CMS that refused every request: %s", rec.Subject)
			}
		}
	}
}

func containsSource(data []byte, source string) bool {
	var d struct {
		Detected schemas.Detected `json:"detected"`
	}
	return json.Unmarshal(data, &d) == nil && d.Detected.Source == source
}

// CMS trails the gateway. Whether the bridge knows the lag or confirms
// every change with the gateway, a call that starts and ends is reported
// once each way: a lagging sweep never reverts a fresher observation.
func TestLaggingCMSReportsEachChangeOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    pollerOpts
	}{
		{"lag known", pollerOpts{lag: 400 * time.Millisecond}},
		{"confirm", pollerOpts{confirm: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := sweepFixture(t, 6, cecsim.Config{CMS: cecsim.CMS{Lag: 400 * time.Millisecond}}, tc.o)
			testwait.Until(t, "every agent swept", allSwept(f, 6))
			for range 3 {
				id, err := f.sim.StartCall(1005)
				if err != nil {
					t.Fatal(err)
				}
				n := len(f.callsOf(1005))
				testwait.Until(t, "the call", func() bool { return len(f.callsOf(1005)) == n+1 })
				if err := f.sim.EndCall(1005, id); err != nil {
					t.Fatal(err)
				}
				testwait.Until(t, "its end", func() bool { return len(f.callsOf(1005)) == n+2 })
			}
			testwait.Until(t, "the sweep on every agent again", allSwept(f, 6))
			got := f.callsOf(1005)
			if len(got) != 7 {
				t.Fatalf("calls of 1005 = %v: want the snapshot and three calls, each start and end once", got)
			}
			for i, ids := range got {
				if want := i%2 == 1; (len(ids) == 1) != want {
					t.Fatalf("calls of 1005 = %v: a change reported twice or reverted", got)
				}
			}
			validateAll(t, f.sink.records())
		})
	}
}

// Agent states come from the sweep: a snapshot per agent, then a change
// when an agent answers a call.
func TestAgentStatesArePublished(t *testing.T) {
	f := sweepFixture(t, 5, cecsim.Config{}, pollerOpts{})
	states := func(w int) []schemas.Change[schemas.AgentState] { return agentStates(t, f.sink, w) }
	testwait.Until(t, "a state snapshot of every agent", func() bool {
		for _, w := range f.sim.Agents() {
			if len(states(w)) == 0 {
				return false
			}
		}
		return true
	})
	before := states(1003)
	id, err := f.sim.StartCall(1003)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.SetCallStatus(1003, id, cecsim.CallTalking); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "agent 1003 talking", func() bool {
		s := states(1003)
		return len(s) > len(before) && s[len(s)-1].After.State == "talking"
	})
	validateAll(t, f.sink.records())
}

// The sweep takes an agent back from per-agent polling only when it
// agrees with what was published: a lagging CMS, right after a failed
// chunk, would otherwise report a call the gateway just saw start as not
// there (and then there again). The bridge here does not even know the lag.
func TestLaggingSweepDoesNotRevertWhatAPollSaw(t *testing.T) {
	f := sweepFixture(t, 6, cecsim.Config{CMS: cecsim.CMS{Lag: 600 * time.Millisecond}}, pollerOpts{idle: 100 * time.Millisecond})
	testwait.Until(t, "every agent swept", allSwept(f, 6))
	for round := range 3 {
		f.sim.Inject(cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultHTTPStatus, Status: 502})
		testwait.Until(t, "every agent polled one by one", allSwept(f, 0))
		n := len(f.callsOf(1005))
		id, err := f.sim.StartCall(1005)
		if err != nil {
			t.Fatal(err)
		}
		testwait.Until(t, "the call seen by a poll", func() bool { return len(f.callsOf(1005)) == n+1 })
		f.sim.ClearFaults() // the lagging sweep is back at once
		testwait.Until(t, "the sweep on every agent again", allSwept(f, 6))
		testwait.Until(t, "CMS to have caught up with the call", func() bool {
			v2 := callsV2(t, f.sink, 1005)
			last := v2[len(v2)-1]
			return last.Detected.Source == schemas.SourceCMS && len(last.After.Calls) == 1 && last.After.Calls[0].ID == id
		})
		if got := f.callsOf(1005); len(got) != n+1 {
			t.Fatalf("round %d: calls of 1005 = %v: the lagging sweep reverted the call", round, got)
		}
		if err := f.sim.EndCall(1005, id); err != nil {
			t.Fatal(err)
		}
		testwait.Until(t, "the call's end", func() bool { return len(f.callsOf(1005)) == n+2 })
		if got := f.callsOf(1005); len(got) != n+2 {
			t.Fatalf("round %d: calls of 1005 = %v", round, got)
		}
	}
	if got := f.callsOf(1005); len(got) != 7 {
		t.Fatalf("calls of 1005 = %v: want the snapshot and three calls, each start and end once", got)
	}
}

// slowStatesFront serves the simulator, holding agentstatusinfobyagentids
// answers for delay after CMS has computed them: the answer arrives late,
// with a time in state that was true when it left.
type slowStatesFront struct {
	sim   http.Handler
	delay atomic.Int64 // time.Duration
}

func (s *slowStatesFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := time.Duration(s.delay.Load())
	if d == 0 || !strings.HasSuffix(r.URL.Path, "/agentstatusinfobyagentids") {
		s.sim.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.sim.ServeHTTP(rec, r)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return
	case <-t.C:
	}
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// An answer that arrives late is not a state change: the time in state it
// carries was measured when CMS answered, so the start of the state it
// implies only looks later. A state left and re-entered between two
// sweeps is still one.
func TestLateStatesAnswerIsNoStateChange(t *testing.T) {
	sim := cecsimtest.Start(t, cecsim.Config{Agents: 4, LongPollHold: 100 * time.Millisecond})
	front := &slowStatesFront{sim: sim.Handler()}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	f := startPollerWith(t, sim, nil, pollerOpts{url: srv.URL, sweep: true, idle: time.Hour, requestTimeout: 5 * time.Second})
	states := func(w int) []schemas.Change[schemas.AgentState] { return agentStates(t, f.sink, w) }
	testwait.Until(t, "a state snapshot of agent 1002", func() bool { return len(states(1002)) == 1 })
	answers := func() int64 { return f.sim.Counters()["agentstatusinfobyagentids"] }

	front.delay.Store(int64(2500 * time.Millisecond))
	n := answers()
	testwait.Until(t, "a late answer taken", func() bool { return answers() >= n+2 })
	front.delay.Store(0)
	n = answers()
	testwait.Until(t, "a prompt answer taken", func() bool { return answers() >= n+2 })
	if got := states(1002); len(got) != 1 {
		t.Fatalf("agent 1002 states %+v: a late answer moved the state's start", got)
	}

	// Out of idle and back between two sweeps: idle again, since now.
	first := states(1002)[0]
	id, err := f.sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.EndCall(1002, id); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "agent 1002 idle since a later moment", func() bool {
		s := states(1002)
		last := s[len(s)-1]
		return len(s) > 1 && last.After.State == "idle" && last.After.Since.After(first.After.Since)
	})
	validateAll(t, f.sink.records())
}
