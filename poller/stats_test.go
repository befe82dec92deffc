package poller_test

import (
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// Stats keeps its counts as the facts change rather than walking every
// agent: through roster growth and shrink, the sweep taking agents over
// and handing them back, visibility lost and regained, a phone another
// writer deleted and a restart from the stream, the kept counts equal a
// count from scratch at every look.
func TestStatsKeptCountsEqualARecount(t *testing.T) {
	f := sweepFixture(t, 10, cecsim.Config{}, pollerOpts{idle: 200 * time.Millisecond})
	phones := func() int { return len(f.sim.Phones()) }
	step := func(tn *poller.Tenant, what string, want func(poller.Stats) bool) {
		t.Helper()
		testwait.Until(t, what, func() bool {
			kept, walked := poller.StatsAndRecount(tn)
			if kept != walked {
				t.Fatalf("%s: kept %+v, counted from scratch %+v", what, kept, walked)
			}
			return want(kept)
		})
	}
	all := func(agents int, swept bool) func(poller.Stats) bool {
		return func(st poller.Stats) bool {
			return st.AgentsTracked == agents && st.AgentsVisible == agents && st.PhonesTracked == phones() &&
				(st.SweptAgents == agents) == swept
		}
	}
	step(f.tenant, "every agent swept", all(10, true))

	for _, w := range []int{5000, 5001} {
		if err := f.sim.AddAgent(w); err != nil {
			t.Fatal(err)
		}
	}
	step(f.tenant, "the roster grown and swept", all(12, true))
	if err := f.sim.RemoveAgent(1005); err != nil {
		t.Fatal(err)
	}
	step(f.tenant, "the roster shrunk, the agent's phone deleted", all(11, true))
	if err := f.sim.AddAgent(1005); err != nil {
		t.Fatal(err)
	}
	step(f.tenant, "the removed agent back", all(12, true))

	// A failed chunk hands its agents back to per-agent polling; failing
	// polls then lose them; both recover.
	f.sim.Inject(cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultHTTPStatus, Status: 502})
	step(f.tenant, "every agent handed back", func(st poller.Stats) bool { return st.SweptAgents == 0 })
	f.sim.Inject(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultHTTPStatus, Status: 503})
	step(f.tenant, "every agent not visible", func(st poller.Stats) bool {
		return st.AgentsTracked == 12 && st.AgentsVisible == 0 && st.SweptAgents == 0
	})
	f.sim.ClearFaults()
	step(f.tenant, "every agent visible and swept again", all(12, true))

	// Another writer's deletion makes the poller forget a phone; the next
	// walk creates it anew.
	subject := schemas.PhoneStateSubject(tenantName, f.sim.Phones()[0].PhoneNum)
	f.sink.drop(subject)
	f.tenant.Conflicted(subject)
	testwait.Until(t, "the phone created anew", func() bool {
		evs := f.sink.on(subject)
		return len(evs) > 1 && evs[len(evs)-1].ID == schemas.EventID(subject, 1)
	})
	step(f.tenant, "the phone counted once", all(12, true))

	// A new term restores the phones from the stream before its first walk.
	f.stop()
	g := startPollerWith(t, f.sim, f.sink.records(), pollerOpts{sweep: true, idle: time.Hour})
	step(g.tenant, "the restarted tenant caught up", all(12, true))
	validateAll(t, f.sink.records())
	validateAll(t, g.sink.records())
}

// drop removes subject from the stream the recorder holds, as another
// writer's delete would: the next event on it starts at sequence 1.
func (r *recorder) drop(subject string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.stored, subject)
	delete(r.last, subject)
}
