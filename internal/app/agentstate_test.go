package app_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// startCMSBridge runs a ready bridge over a simulator of n agents, its
// tenant swept through CMS every 100 ms.
func startCMSBridge(t *testing.T, n int) (*opsEnv, *runningBridge) {
	t.Helper()
	e := newOpsEnv(t, n)
	tc := &e.cfg.Tenants[0]
	tc.Intervals.Sweep = 100 * time.Millisecond
	tc.CMS = &configs.CMS{URL: e.sim.URL(), AK: "cms-ak", SK: "cms-sk", CCID: 1, VDNs: []configs.CMSVDN{{VDN: 1}}, Concurrency: 2}
	e.cfg = configs.WithDefaults(e.cfg)
	rb := runBridge(t, e.cfg, e.srv.Connect(t), slog.New(slog.DiscardHandler))
	waitReadyz(t, rb.httpBase(t), "ready", func(code int, _ readyz) bool { return code == http.StatusOK })
	return e, rb
}

// With a CMS sweep, agent.state answers every agent's CTI state as the
// simulator has it, and follows a call ringing and then answered: a
// lookup with min_seq set to the state event's stream sequence answers
// that event's state, seq and observation.
func TestAgentStateLookupFollowsTheSweep(t *testing.T) {
	e, _ := startCMSBridge(t, 4)
	nc := e.srv.Connect(t)
	js := natstest.JetStream(t, nc)

	stateOf := func(req schemas.AgentStateRequest) (schemas.AgentStateResponse, string) {
		t.Helper()
		var r schemas.AgentStateResponse
		body, code := schematest.Lookup(t, nc, "ops", schemas.LookupAgentState, req, 5*time.Second)
		if code == "" {
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
		}
		return r, code
	}
	for _, n := range e.sim.Agents() {
		testwait.For(t, 15*time.Second, fmt.Sprintf("agent %d's state as the simulator has it", n), func() bool {
			r, code := stateOf(schemas.AgentStateRequest{WorkNo: n})
			info, _ := e.sim.Agent(n)
			return code == "" && r.StateCode == info.State && r.Visible
		})
	}

	// lastState waits for the stream's last state event of the agent to
	// carry code, and returns its stream sequence and payload.
	lastState := func(workNo, code int) (uint64, schemas.Change[schemas.AgentState]) {
		t.Helper()
		var seq uint64
		var c schemas.Change[schemas.AgentState]
		testwait.For(t, 10*time.Second, fmt.Sprintf("agent %d's state %d in the stream", workNo, code), func() bool {
			m, err := lastMsgOn(t, js, schemas.AgentStateSubject("ops", workNo))
			if err != nil {
				return false
			}
			var ev schemas.Event
			if json.Unmarshal(m.Data, &ev) != nil || json.Unmarshal(ev.Data, &c) != nil {
				t.Fatalf("state event %s", m.Data)
			}
			seq = m.Sequence
			return c.After != nil && c.After.StateCode == code
		})
		return seq, c
	}
	id, err := e.sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		state string
		move  func() error
	}{
		{"answering", func() error { return nil }}, // ringing
		{"talking", func() error { return e.sim.SetCallStatus(1002, id, cecsim.CallTalking) }},
	} {
		if err := step.move(); err != nil {
			t.Fatal(err)
		}
		info, _ := e.sim.Agent(1002)
		seq, c := lastState(1002, info.State)
		r, code := stateOf(schemas.AgentStateRequest{WorkNo: 1002, ReadOptions: schemas.ReadOptions{MinSeq: seq}})
		if code != "" || r.State != step.state || r.StateCode != info.State || r.Seq != c.Seq || r.StreamSeq < seq ||
			r.Observed == nil || !r.Observed.Equal(c.Detected.ByPoll) || !r.Since.Equal(c.After.Since) || r.Since.After(*r.Observed) {
			t.Fatalf("agent.state 1002 with min_seq %d: %s %+v, event %+v", seq, code, r, c.After)
		}
	}
}

// CMS taken away: nothing observes agent states any more, so one
// bridge.states_visibility picture lists every agent and agent.state
// answers the last state with visible false (409 with require_visible)
// while agent.calls stays visible through per-agent polling; CMS back,
// the picture is empty and the states visible again. The bridge then
// stops while CMS is away and restarts once it is back: nothing changes
// in the new term, yet its first picture clears the old one.
func TestAgentStateNotVisibleWhileCMSIsAway(t *testing.T) {
	e, rb := startCMSBridge(t, 4)
	nc := e.srv.Connect(t)
	js := natstest.JetStream(t, nc)
	statesSubj := schemas.BridgeSubject("ops", schemas.BridgeStatesVisibility)

	// lookup asks for agent 1003's state or calls with require_visible
	// and returns the error code ("" for an answer) and its visible.
	lookup := func(endpoint string, requireVisible bool) (code string, visible bool) {
		t.Helper()
		opts := schemas.ReadOptions{RequireVisible: requireVisible}
		var req any = schemas.AgentStateRequest{WorkNo: 1003, ReadOptions: opts}
		if endpoint == schemas.LookupAgentCalls {
			req = schemas.AgentCallsRequest{WorkNo: 1003, ReadOptions: opts}
		}
		body, code := schematest.Lookup(t, nc, "ops", endpoint, req, 5*time.Second)
		if code != "" {
			return code, false
		}
		var m schemas.Meta
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return "", m.Visible
	}
	// picture is the last states picture stored, validated.
	picture := func() (sv schemas.StatesVisibility, ok bool) {
		t.Helper()
		m, err := js.Stream(t.Context(), schemas.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := m.GetLastMsgForSubject(t.Context(), statesSubj)
		if err != nil {
			return sv, false
		}
		schematest.ValidateEvent(t, raw.Data)
		var ev schemas.Event
		if err := json.Unmarshal(raw.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(ev.Data, &sv); err != nil {
			t.Fatal(err)
		}
		return sv, true
	}
	visibleState := func() bool { code, vis := lookup(schemas.LookupAgentState, false); return code == "" && vis }
	testwait.For(t, 15*time.Second, "agent 1003's state visible", visibleState)

	e.sim.SetCMSLicensed(false)
	testwait.For(t, 15*time.Second, "agent 1003's state not visible", func() bool {
		code, vis := lookup(schemas.LookupAgentState, false)
		return code == "" && !vis
	})
	if sv, _ := picture(); sv.NotVisible != "1001-1004" || sv.Count != 4 || sv.Reason == "" {
		t.Fatalf("states picture while CMS is away: %+v", sv)
	}
	if code, _ := lookup(schemas.LookupAgentState, true); code != "409" {
		t.Fatalf("agent.state with require_visible while CMS is away: %q, want 409", code)
	}
	testwait.For(t, 15*time.Second, "agent 1003's calls visible through its polls", func() bool {
		code, vis := lookup(schemas.LookupAgentCalls, true)
		return code == "" && vis
	})

	e.sim.SetCMSLicensed(true)
	testwait.For(t, 15*time.Second, "agent 1003's state visible again", visibleState)
	if code, _ := lookup(schemas.LookupAgentState, true); code != "" {
		t.Fatalf("agent.state with require_visible after CMS came back: %q", code)
	}
	if sv, _ := picture(); sv.NotVisible != "" || sv.Count != 0 {
		t.Fatalf("states picture after CMS came back: %+v", sv)
	}

	// A term ends with the states not visible; the next starts with CMS
	// back and corrects the picture with its first one.
	e.sim.SetCMSLicensed(false)
	testwait.For(t, 15*time.Second, "the states not visible again", func() bool {
		sv, ok := picture()
		return ok && sv.Count == 4
	})
	rb.stop()
	lost, _ := picture()
	e.sim.SetCMSLicensed(true)
	runBridge(t, e.cfg, e.srv.Connect(t), slog.New(slog.DiscardHandler))
	testwait.For(t, 15*time.Second, "the new term's picture", func() bool {
		sv, ok := picture()
		return ok && sv.Seq > lost.Seq
	})
	if sv, _ := picture(); sv.Seq != lost.Seq+1 || sv.Count != 0 || sv.NotVisible != "" {
		t.Fatalf("the new term's first picture %+v after %+v, want every state visible", sv, lost)
	}
	testwait.For(t, 15*time.Second, "agent 1003's state visible in the new term", visibleState)
}
