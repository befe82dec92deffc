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

// statesPictures decodes the bridge.states_visibility events recorded.
func statesPictures(t *testing.T, r *recorder) []schemas.StatesVisibility {
	t.Helper()
	var out []schemas.StatesVisibility
	for _, ev := range r.on(schemas.BridgeSubject(tenantName, schemas.BridgeStatesVisibility)) {
		var sv schemas.StatesVisibility
		if err := json.Unmarshal(ev.Data, &sv); err != nil {
			t.Fatal(err)
		}
		out = append(out, sv)
	}
	return out
}

// lastPictureIs says whether the last states picture lists exactly agents.
func lastPictureIs(t *testing.T, r *recorder, agents string) func() bool {
	return func() bool {
		evs := statesPictures(t, r)
		return len(evs) > 0 && evs[len(evs)-1].NotVisible == agents
	}
}

// checkPictures checks what every states picture promises: count and
// reason agree with the list, and each differs from the one before it
// (only net changes are emitted).
func checkPictures(t *testing.T, evs []schemas.StatesVisibility) {
	t.Helper()
	for i, sv := range evs {
		nums, err := schemas.ParseRanges(sv.NotVisible)
		if err != nil || len(nums) != sv.Count || (sv.Count > 0) != (sv.Reason != "") {
			t.Fatalf("picture %d %+v: count or reason disagrees with not_visible", i, sv)
		}
		if i > 0 && sv.NotVisible == evs[i-1].NotVisible {
			t.Fatalf("pictures %d and %d both list %q: not a change", i-1, i, sv.NotVisible)
		}
	}
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

// CMS taken away (not licensed): nothing observes the agents' states any
// more, so one states picture lists them all, while per-agent polling
// keeps their calls visible (the heartbeat says so).
// CMS back: the picture is empty again. The term's first picture, once
// the first sweep ran, is empty.
func TestCMSAwayReportsAgentStatesNotVisible(t *testing.T) {
	f := sweepFixture(t, 6, cecsim.Config{}, pollerOpts{idle: 200 * time.Millisecond})
	testwait.Until(t, "every agent swept", allSwept(f, 6))
	testwait.Until(t, "the term's first states picture", func() bool { return len(statesPictures(t, f.sink)) == 1 })
	if sv := statesPictures(t, f.sink)[0]; sv.Seq != 1 || sv.Count != 0 || sv.NotVisible != "" || sv.Reason != "" {
		t.Fatalf("first picture %+v, want every state visible", sv)
	}

	f.sim.SetCMSLicensed(false)
	testwait.Until(t, "the states not visible", lastPictureIs(t, f.sink, "1001-1006"))
	testwait.Until(t, "the sweep unavailable and every agent's calls visible through its polls", func() bool {
		st := f.tenant.Stats()
		return st.Sweep == poller.SweepUnavailable && st.SweptAgents == 0 && st.AgentsVisible == st.AgentsTracked
	})
	hbBefore, _ := lastHeartbeat(t, f.sink)
	testwait.Until(t, "a later heartbeat with every agent's calls visible", func() bool {
		hb, ok := lastHeartbeat(t, f.sink)
		return ok && hb.Seq > hbBefore.Seq && hb.NotVisible == "" && hb.AgentsVisible == 6
	})
	if sv := statesPictures(t, f.sink); sv[len(sv)-1].NotVisible != "1001-1006" {
		t.Fatalf("the calls visible again moved the states picture: %+v", sv[len(sv)-1])
	}

	f.sim.SetCMSLicensed(true)
	testwait.Until(t, "the states visible again", lastPictureIs(t, f.sink, ""))
	checkPictures(t, statesPictures(t, f.sink))
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

// A states chunk that fails puts only its own agents in the states
// picture; the other chunk's agents, and every agent's calls, stay
// visible.
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
		for _, ev := range f.sink.on(schemas.BridgeSubject(tenantName, schemas.BridgeVisibility)) {
			var v schemas.Visibility
			if err := json.Unmarshal(ev.Data, &v); err != nil {
				t.Fatal(err)
			}
			if v.Scope == schemas.ScopeCalls && v.State == schemas.VisibilityLost {
				n++
			}
		}
		return n
	}
	lostBefore := callsLost()

	front.fail.Store(true)
	testwait.Until(t, "VDN 2's states not visible", lastPictureIs(t, f.sink, "1006-1010"))
	if hb, _ := lastHeartbeat(t, f.sink); hb.NotVisible != "" {
		t.Fatalf("heartbeat %+v: a failed states chunk made calls not visible", hb)
	}
	if n := callsLost(); n != lostBefore {
		t.Fatalf("%d calls lost events for a failed states chunk", n-lostBefore)
	}

	front.fail.Store(false)
	testwait.Until(t, "VDN 2's states visible again", lastPictureIs(t, f.sink, ""))
	pics := statesPictures(t, f.sink)
	for _, sv := range pics {
		if sv.NotVisible != "" && sv.NotVisible != "1006-1010" {
			t.Fatalf("states picture %+v names agents outside the failed chunk", sv)
		}
	}
	checkPictures(t, pics)
	validateAll(t, f.sink.records())
}

// CMS refusing the calls requests for good leaves the sweep unavailable
// until its retry: no states answer comes either, so the states answered
// by the refused sweep itself are in the picture too.
func TestUnavailableSweepLosesStatesItDidAnswer(t *testing.T) {
	f := sweepFixture(t, 4, cecsim.Config{}, pollerOpts{idle: 200 * time.Millisecond})
	testwait.Until(t, "every agent swept", allSwept(f, 4))
	f.sim.Inject(cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultHTTPStatus, Status: http.StatusUnauthorized})
	testwait.Until(t, "the sweep unavailable", func() bool { return f.tenant.Stats().Sweep == poller.SweepUnavailable })
	testwait.Until(t, "the states not visible", lastPictureIs(t, f.sink, "1001-1004"))
	f.sim.ClearFaults()
	testwait.Until(t, "the states visible once the sweep retries", lastPictureIs(t, f.sink, ""))
	checkPictures(t, statesPictures(t, f.sink))
	validateAll(t, f.sink.records())
}

// Each term emits its picture once its first sweep ran, continuing the
// subject's seq: a term that starts with CMS back corrects the previous
// term's "not visible" at once; a term that starts with CMS still away
// says so at once, without first saying every state visible.
func TestNewTermEmitsItsStatesPicture(t *testing.T) {
	f := sweepFixture(t, 4, cecsim.Config{}, pollerOpts{idle: 200 * time.Millisecond})
	testwait.Until(t, "every agent swept", allSwept(f, 4))
	f.sim.SetCMSLicensed(false)
	testwait.Until(t, "the states not visible", lastPictureIs(t, f.sink, "1001-1004"))
	f.stop()
	first := statesPictures(t, f.sink)

	// CMS still away: the second term's first picture is the same loss.
	second := startPollerWith(t, f.sim, f.sink.records(), pollerOpts{sweep: true, idle: 200 * time.Millisecond})
	testwait.Until(t, "the second term's picture", func() bool { return len(statesPictures(t, second.sink)) > 0 })
	pics := statesPictures(t, second.sink)
	last := first[len(first)-1]
	subj := schemas.BridgeSubject(tenantName, schemas.BridgeStatesVisibility)
	if sv := pics[0]; sv.Seq != last.Seq+1 || sv.PrevID != schemas.EventID(subj, last.Seq) || sv.NotVisible != "1001-1004" || sv.Reason == "" {
		t.Fatalf("second term's first picture %+v after %+v, want the loss again, linked", sv, last)
	}
	second.stop()

	// CMS back: the third term's first picture clears the loss although
	// nothing changes in it.
	f.sim.SetCMSLicensed(true)
	restore := append(f.sink.records(), second.sink.records()...)
	third := startPollerWith(t, f.sim, restore, pollerOpts{sweep: true, idle: 200 * time.Millisecond})
	testwait.Until(t, "the third term's picture", func() bool { return len(statesPictures(t, third.sink)) > 0 })
	prev := statesPictures(t, second.sink)
	if sv := statesPictures(t, third.sink)[0]; sv.Seq != prev[len(prev)-1].Seq+1 || sv.NotVisible != "" || sv.Count != 0 {
		t.Fatalf("third term's first picture %+v, want every state visible", sv)
	}
	for _, r := range [][]schemas.Record{f.sink.records(), second.sink.records(), third.sink.records()} {
		validateAll(t, r)
	}
}
