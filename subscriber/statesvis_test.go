package subscriber

import (
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
)

// statesVisibility publishes the whole states picture: the agents whose
// state is not observed (ranges; "" for none).
func (b *bridge) statesVisibility(notVisible string) uint64 {
	b.tb.Helper()
	nums, err := schemas.ParseRanges(notVisible)
	if err != nil {
		b.tb.Fatal(err)
	}
	reason := ""
	if len(nums) > 0 {
		reason = "timeout"
	}
	subj := schemas.BridgeSubject(b.tenant, schemas.BridgeStatesVisibility)
	return b.publish(subj, schemas.TypeBridgeStatesVisibility, func(seq uint64, prev string) any {
		return schemas.StatesVisibility{Seq: seq, PrevID: prev, Tenant: b.tenant, NotVisible: notVisible,
			Count: len(nums), Since: time.Now().UTC(), Reason: reason}
	})
}

// A view that starts after the states pictures learns the current one from
// the last message alone (the state stream keeps nothing else), apart from
// the calls' visibility; a later picture (a new term's, say) replaces it
// whole, so a view holding an old "not visible" is corrected by it.
func TestLateViewLearnsStatesVisibilityFromTheLastPicture(t *testing.T) {
	e := newEnv(t, nil, Config{})
	now := time.Now().UTC().Truncate(time.Second)
	for _, n := range []int{1001, 1002, 1003} {
		e.br.calls(n, []string{}, now)
		e.br.state(n, idle(now.Add(-time.Minute)), now)
	}
	e.br.statesVisibility("1001-1003")
	e.settle(t, e.br.statesVisibility("1001-1002"))

	late, _ := startInstance(t, e.srv, nil, Config{Tenants: []string{"dev"}, QueueGroup: "late"})
	testwait.Until(t, "the late view to catch up", func() bool { return late.Applied() >= e.view.Applied() })
	for _, v := range []*View{e.view, late} {
		for n, want := range map[int]bool{1001: false, 1002: false, 1003: true} {
			st, found := v.agentCTIState("dev", n)
			calls, _, _ := v.agentCalls("dev", n)
			if !found || st.Visible != want || !calls.Visible {
				t.Fatalf("agent %d: state visible=%v (want %v), calls visible=%v (want true)", n, st.Visible, want, calls.Visible)
			}
		}
	}

	seq := e.br.statesVisibility("")
	e.settle(t, seq)
	testwait.Until(t, "the late view to apply it", func() bool { return late.Applied() >= seq })
	for _, n := range []int{1001, 1002, 1003} {
		if st, _ := late.agentCTIState("dev", n); !st.Visible {
			t.Fatalf("agent %d's state still not visible after an empty picture", n)
		}
	}
}
