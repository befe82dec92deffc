package poller_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
	"github.com/cecbridge/cecbridge/schemas"
)

// visibilityOf decodes the visibility events recorded for one scope.
func visibilityOf(t *testing.T, r *recorder, scope string) []schemas.Visibility {
	t.Helper()
	var out []schemas.Visibility
	for _, ev := range r.on(schemas.BridgeSubject(tenantName, schemas.BridgeVisibility)) {
		var v schemas.Visibility
		if err := json.Unmarshal(ev.Data, &v); err != nil {
			t.Fatal(err)
		}
		if v.Scope == scope {
			out = append(out, v)
		}
	}
	return out
}

// lastHeartbeat decodes the last heartbeat recorded, if any.
func lastHeartbeat(t *testing.T, r *recorder) (schemas.Heartbeat, bool) {
	t.Helper()
	hbs := r.on(schemas.BridgeSubject(tenantName, schemas.BridgeHeartbeat))
	if len(hbs) == 0 {
		return schemas.Heartbeat{}, false
	}
	var hb schemas.Heartbeat
	if err := json.Unmarshal(hbs[len(hbs)-1].Data, &hb); err != nil {
		t.Fatal(err)
	}
	return hb, true
}

// lastStatesEvent says whether the last states-scope event is in the given
// state and covers exactly agents.
func lastStatesEvent(t *testing.T, r *recorder, state, agents string) func() bool {
	return func() bool {
		evs := visibilityOf(t, r, schemas.ScopeStates)
		return len(evs) > 0 && evs[len(evs)-1].State == state && evs[len(evs)-1].Agents == agents
	}
}

// CMS taken away (not licensed): nothing observes the agents' states any
// more, so they are reported lost on bridge.visibility (scope states) and
// in the heartbeat, while per-agent polling keeps their calls visible.
// CMS back: the states are visible again, in events and heartbeat.
func TestCMSAwayReportsAgentStatesNotVisible(t *testing.T) {
	f := sweepFixture(t, 6, cecsim.Config{}, pollerOpts{idle: 200 * time.Millisecond})
	testwait.Until(t, "every agent swept", allSwept(f, 6))
	testwait.Until(t, "a heartbeat with every state visible", func() bool {
		hb, ok := lastHeartbeat(t, f.sink)
		return ok && hb.AgentsTracked == 6 && hb.StatesNotVisible == ""
	})
	if evs := visibilityOf(t, f.sink, schemas.ScopeStates); len(evs) != 0 {
		t.Fatalf("states visibility events while CMS answers: %+v", evs)
	}

	f.sim.SetCMSLicensed(false)
	testwait.Until(t, "the states reported lost", lastStatesEvent(t, f.sink, schemas.VisibilityLost, "1001-1006"))
	lost := visibilityOf(t, f.sink, schemas.ScopeStates)
	if v := lost[len(lost)-1]; v.Count != 6 || v.Reason == "" {
		t.Fatalf("states lost event %+v, want 6 agents and a reason", v)
	}
	testwait.Until(t, "a heartbeat listing the states not visible", func() bool {
		hb, ok := lastHeartbeat(t, f.sink)
		return ok && hb.StatesNotVisible == "1001-1006"
	})
	testwait.Until(t, "the sweep unavailable and every agent's calls visible through its polls", func() bool {
		st := f.tenant.Stats()
		return st.Sweep == poller.SweepUnavailable && st.SweptAgents == 0 && st.AgentsVisible == st.AgentsTracked
	})
	if hb, _ := lastHeartbeat(t, f.sink); hb.NotVisible != "" || hb.AgentsVisible != 6 {
		t.Fatalf("heartbeat %+v: the calls should stay visible", hb)
	}

	f.sim.SetCMSLicensed(true)
	testwait.Until(t, "the states restored", lastStatesEvent(t, f.sink, schemas.VisibilityRestored, "1001-1006"))
	testwait.Until(t, "a heartbeat with every state visible again", func() bool {
		hb, ok := lastHeartbeat(t, f.sink)
		return ok && hb.StatesNotVisible == ""
	})
	validateAll(t, f.sink.records())
}

// failingStatesFront serves the simulator but answers 502 to the
// agentstatusinfobyagentids requests of one VDN while fail is set.
type failingStatesFront struct {
	sim  http.Handler
	vdn  int
	fail atomic.Bool
}

func (s *failingStatesFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.fail.Load() || !strings.HasSuffix(r.URL.Path, "/agentstatusinfobyagentids") {
		s.sim.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req struct {
		VDN int `json:"vdn"`
	}
	if json.Unmarshal(body, &req) == nil && req.VDN == s.vdn {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.sim.ServeHTTP(w, r)
}

// A states chunk that fails marks only its own agents' states lost; the
// other chunk's agents, and every agent's calls, stay visible.
func TestFailedStatesChunkMarksOnlyItsAgents(t *testing.T) {
	sim := cecsimtest.Start(t, cecsim.Config{Agents: 10, AgentsPerVDN: 5, LongPollHold: 100 * time.Millisecond})
	front := &failingStatesFront{sim: sim.Handler(), vdn: 2}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	vdns := []cec.VDN{{ID: 1, Covers: func(w int) bool { return w <= 1005 }}, {ID: 2}}
	f := startPollerWith(t, sim, nil, pollerOpts{url: srv.URL, sweep: true, idle: time.Hour, vdns: vdns})
	testwait.Until(t, "every agent swept", allSwept(f, 10))
	testwait.Until(t, "a state snapshot of agent 1010", func() bool { return len(agentStates(t, f.sink, 1010)) == 1 })
	testwait.Until(t, "every agent's calls visible", func() bool {
		st := f.tenant.Stats()
		return st.AgentsVisible == st.AgentsTracked
	})
	callsLost := func() (n int) {
		for _, v := range visibilityOf(t, f.sink, schemas.ScopeCalls) {
			if v.State == schemas.VisibilityLost {
				n++
			}
		}
		return n
	}
	lostBefore := callsLost()

	front.fail.Store(true)
	testwait.Until(t, "VDN 2's states reported lost", lastStatesEvent(t, f.sink, schemas.VisibilityLost, "1006-1010"))
	testwait.Until(t, "a heartbeat listing VDN 2's states", func() bool {
		hb, ok := lastHeartbeat(t, f.sink)
		return ok && hb.StatesNotVisible == "1006-1010"
	})
	if hb, _ := lastHeartbeat(t, f.sink); hb.NotVisible != "" {
		t.Fatalf("heartbeat %+v: a failed states chunk made calls not visible", hb)
	}
	if n := callsLost(); n != lostBefore {
		t.Fatalf("%d calls lost events for a failed states chunk", n-lostBefore)
	}

	front.fail.Store(false)
	testwait.Until(t, "VDN 2's states restored", lastStatesEvent(t, f.sink, schemas.VisibilityRestored, "1006-1010"))
	for _, v := range visibilityOf(t, f.sink, schemas.ScopeStates) {
		if v.Agents != "1006-1010" {
			t.Fatalf("states visibility %+v names agents outside the failed chunk", v)
		}
	}
	validateAll(t, f.sink.records())
}

// CMS refusing the calls requests for good leaves the sweep unavailable
// until its retry: no states answer comes either, so the states answered
// by the refused sweep itself are reported lost.
func TestUnavailableSweepLosesStatesItDidAnswer(t *testing.T) {
	f := sweepFixture(t, 4, cecsim.Config{}, pollerOpts{idle: 200 * time.Millisecond})
	testwait.Until(t, "every agent swept", allSwept(f, 4))
	f.sim.Inject(cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultHTTPStatus, Status: http.StatusUnauthorized})
	testwait.Until(t, "the sweep unavailable", func() bool { return f.tenant.Stats().Sweep == poller.SweepUnavailable })
	testwait.Until(t, "the states reported lost", lastStatesEvent(t, f.sink, schemas.VisibilityLost, "1001-1004"))
	f.sim.ClearFaults()
	testwait.Until(t, "the states restored once the sweep retries", lastStatesEvent(t, f.sink, schemas.VisibilityRestored, "1001-1004"))
	validateAll(t, f.sink.records())
}
