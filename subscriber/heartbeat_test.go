package subscriber

import (
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
)

func (b *bridge) heartbeat(notVisible string, roster, phones bool) uint64 {
	subj := schemas.BridgeSubject(b.tenant, schemas.BridgeHeartbeat)
	return b.publish(subj, schemas.TypeBridgeHeartbeat, func(seq uint64, prev string) any {
		return schemas.Heartbeat{Seq: seq, PrevID: prev, Tenant: b.tenant, Instance: "test", Started: time.Now().UTC(),
			NotVisible: notVisible, RosterVisible: roster, PhonesVisible: phones}
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
