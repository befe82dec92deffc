package poller

import (
	"maps"
	"slices"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// statesPicture is which agents' states the CMS sweep cannot observe now
// (tenants with CMS). Nothing but the sweep observes a state, so per-agent
// polling that keeps an agent's calls visible leaves its state unobserved.
//
// Each bridge.states_visibility event carries the whole picture, so a late
// reader needs only the last one: there are no per-agent transitions to
// drain, only a set, and a flag that says whether it may differ from the
// picture last emitted, so that a flush with nothing changed costs
// nothing. Guarded by the tenant's mutex.
type statesPicture struct {
	notVisible map[int]struct{}
	reason     string    // why the latest loss; "" once the set is empty
	since      time.Time // when the set last changed
	dirty      bool      // changed since the last event emitted
	// emitted is the not_visible of the last event emitted this term;
	// none emitted yet (the start of a term) always emits.
	emitted     string
	emittedOnce bool
	// swept: a sweep of this term asked CMS about the roster, so the
	// picture describes this term's observation (see flushStatesVisibility).
	swept bool
}

func newStatesPicture() statesPicture {
	return statesPicture{notVisible: make(map[int]struct{})}
}

// stateLost reports the agent's state not observed from now, for reason.
func (v *visibility) stateLost(a *agent, now time.Time, reason string) {
	p := &v.states
	if _, lost := p.notVisible[a.workNo]; lost {
		return
	}
	p.notVisible[a.workNo] = struct{}{}
	p.reason, p.since, p.dirty = reason, now, true
}

// stateRestored reports the agent's state observed again; forgetState
// drops an agent that left the roster from the picture. Both are the same
// removal.
func (v *visibility) stateRestored(a *agent, now time.Time) { v.states.remove(a.workNo, now) }

func (v *visibility) forgetState(a *agent, now time.Time) { v.states.remove(a.workNo, now) }

func (p *statesPicture) remove(workNo int, now time.Time) {
	if _, lost := p.notVisible[workNo]; !lost {
		return
	}
	delete(p.notVisible, workNo)
	p.since, p.dirty = now, true
	if len(p.notVisible) == 0 {
		p.reason = ""
	}
}

// pending returns the picture as an event (without seq) when it differs
// from the last one emitted this term, or when none has been: only net
// changes count, so agents lost and regained between two flushes emit
// nothing. start is the term's start, the since of a first picture that
// nothing has changed yet.
func (p *statesPicture) pending(tenant string, start time.Time) (schemas.StatesVisibility, bool) {
	if p.emittedOnce && !p.dirty {
		return schemas.StatesVisibility{}, false
	}
	p.dirty = false
	ranges := schemas.FormatRanges(slices.Collect(maps.Keys(p.notVisible)))
	if p.emittedOnce && ranges == p.emitted {
		return schemas.StatesVisibility{}, false
	}
	since := p.since
	if since.IsZero() {
		since = start
	}
	return schemas.StatesVisibility{
		Tenant: tenant, NotVisible: ranges, Count: len(p.notVisible), Since: since.UTC(), Reason: p.reason,
	}, true
}

// sent records ev as emitted; refused marks the picture to be tried again
// at the next flush.
func (p *statesPicture) sent(ev schemas.StatesVisibility) {
	p.emitted, p.emittedOnce = ev.NotVisible, true
}

func (p *statesPicture) refused() { p.dirty = true }

// flushStatesVisibility emits the states picture when it changed since the
// last event, and always once at the start of a term, so that a reader
// still holding the previous term's picture is corrected even if nothing
// changes in this one. The first picture waits for the term's first sweep
// (or two request timeouts, like the first heartbeat): a term starting
// while CMS is still away would otherwise say every state visible for one
// sweep before losing them again. Tenants without CMS emit none. Callers
// hold t.mu.
func (t *Tenant) flushStatesVisibility(now time.Time) error {
	if t.cfg.CMS == nil {
		return nil
	}
	p := &t.vis.states
	if !p.emittedOnce && !p.swept && now.Sub(t.started) < 2*t.cfg.RequestTimeout {
		return nil
	}
	ev, ok := t.vis.states.pending(t.cfg.Tenant, t.started)
	if !ok {
		return nil
	}
	subject := schemas.BridgeSubject(t.cfg.Tenant, schemas.BridgeStatesVisibility)
	ev.Seq = t.statesVisSeq + 1
	ev.PrevID = prevID(subject, ev.Seq)
	if !t.emit(subject, schemas.TypeBridgeStatesVisibility, ev.Seq, now, ev) {
		t.vis.states.refused()
		return errVisibilityRefused
	}
	t.statesVisSeq = ev.Seq
	t.vis.states.sent(ev)
	return nil
}
