package subscriber

import (
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
)

func (b *bridge) heartbeat(notVisible string, roster, phones bool) uint64 {
	return b.heartbeatOf(schemas.Heartbeat{NotVisible: notVisible, RosterVisible: roster, PhonesVisible: phones})
}

// heartbeatOf publishes hb with its seq, links, tenant and instance set.
func (b *bridge) heartbeatOf(hb schemas.Heartbeat) uint64 {
	subj := schemas.BridgeSubject(b.tenant, schemas.BridgeHeartbeat)
	return b.publish(subj, schemas.TypeBridgeHeartbeat, func(seq uint64, prev string) any {
		hb.Seq, hb.PrevID, hb.Tenant, hb.Instance, hb.Started = seq, prev, b.tenant, "test", time.Now().UTC()
		return hb
	})
}

// The state stream keeps only a tenant's last visibility event; a view that
// starts later learns the full picture from the last heartbeat.
func TestLateViewLearnsVisibilityFromHeartbeat(t *testing.T) {
	e := newEnv(t, nil, Config{})
	now := time.Now()
	e.br.calls(1001, []string{"c1"}, now)
	e.br.calls(1002, []string{}, now)
	e.br.visibility(schemas.VisibilityLost, schemas.ScopeCalls, "1001")
	e.br.visibility(schemas.VisibilityLost, schemas.ScopePhones, "") // replaces the event above in CEC_STATE
	e.settle(t, e.br.heartbeat("1001", true, false))

	late, _ := startInstance(t, e.srv, nil, Config{Tenants: []string{"dev"}, QueueGroup: "late"})
	testwait.Until(t, "the late view to catch up", func() bool { return late.Applied() >= e.view.Applied() })
	r1, _, _ := late.agentCalls("dev", 1001)
	r2, _, _ := late.agentCalls("dev", 1002)
	if r1.Visible || !r2.Visible {
		t.Fatalf("late view: 1001 visible=%v (want false), 1002 visible=%v (want true)", r1.Visible, r2.Visible)
	}

	// A later heartbeat with everything visible clears the lost marks.
	seq := e.br.heartbeat("", true, true)
	e.settle(t, seq)
	testwait.Until(t, "the late view to apply it", func() bool { return late.Applied() >= seq })
	r1, _, _ = late.agentCalls("dev", 1001)
	if !r1.Visible {
		t.Fatal("1001 still not visible after a heartbeat saying all are visible")
	}
}

// A view that starts late learns which agents' states are not visible
// from the last heartbeat (states_not_visible), apart from their calls;
// a later heartbeat without the field makes them visible again.
func TestLateViewLearnsStatesVisibilityFromHeartbeat(t *testing.T) {
	e := newEnv(t, nil, Config{})
	now := time.Now().UTC().Truncate(time.Second)
	for _, n := range []int{1001, 1002, 1003} {
		e.br.calls(n, []string{}, now)
		e.br.state(n, idle(now.Add(-time.Minute)), now)
	}
	e.br.visibility(schemas.VisibilityLost, schemas.ScopeStates, "1001-1002")
	e.br.visibility(schemas.VisibilityLost, schemas.ScopePhones, "") // replaces the event above in CEC_STATE
	e.settle(t, e.br.heartbeatOf(schemas.Heartbeat{StatesNotVisible: "1001-1002", RosterVisible: true}))

	late, _ := startInstance(t, e.srv, nil, Config{Tenants: []string{"dev"}, QueueGroup: "late"})
	testwait.Until(t, "the late view to catch up", func() bool { return late.Applied() >= e.view.Applied() })
	for n, want := range map[int]bool{1001: false, 1002: false, 1003: true} {
		st, found := late.agentCTIState("dev", n)
		calls, _, _ := late.agentCalls("dev", n)
		if !found || st.Visible != want || !calls.Visible {
			t.Fatalf("late view: agent %d state visible=%v (want %v), calls visible=%v (want true)", n, st.Visible, want, calls.Visible)
		}
	}

	seq := e.br.heartbeatOf(schemas.Heartbeat{RosterVisible: true, PhonesVisible: true})
	e.settle(t, seq)
	testwait.Until(t, "the late view to apply it", func() bool { return late.Applied() >= seq })
	if st, _ := late.agentCTIState("dev", 1001); !st.Visible {
		t.Fatal("1001's state still not visible after a heartbeat saying all are visible")
	}
}
