package poller

import (
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// Stats is a point-in-time summary of a tenant poller.
type Stats struct {
	AgentsTracked  int
	AgentsVisible  int
	PhonesTracked  int
	EventsEmitted  uint64
	EventsRefused  uint64
	PollsOK        uint64
	PollsFailed    uint64
	RosterVisible  bool
	PhonesVisible  bool
	LastCallsPoll  time.Time
	LastRosterPoll time.Time
	// Sweep is the CMS sweep's state: "" without CMS, SweepOK,
	// SweepPartial or SweepUnavailable (with SweepReason).
	Sweep       string
	SweepReason string
	SweptAgents int // agents whose calls the sweep reports (not polled one by one)
}

// Stats returns the tenant's current figures.
func (t *Tenant) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.statsLocked()
}

// statsLocked reads the kept counts and never walks the agents: /metrics
// and /readyz ask often, and a walk of 60,000 agents under t.mu would stall
// the poll workers and the sweep for as long.
func (t *Tenant) statsLocked() Stats {
	return Stats{
		Sweep:          t.sweepSt.state,
		SweepReason:    t.sweepSt.reason,
		SweptAgents:    t.counts.swept,
		AgentsTracked:  t.counts.inRoster,
		AgentsVisible:  t.counts.inRoster - t.vis.invisibleCount(),
		PhonesTracked:  t.counts.phones,
		EventsEmitted:  t.emitted.Load(),
		EventsRefused:  t.refused.Load(),
		PollsOK:        t.pollsOK.Load(),
		PollsFailed:    t.pollsBad.Load(),
		RosterVisible:  !t.vis.scopeDown(schemas.ScopeSoftphone),
		PhonesVisible:  !t.vis.scopeDown(schemas.ScopePhones),
		LastCallsPoll:  t.lastCalls,
		LastRosterPoll: t.lastRoster,
	}
}

// counts are the per-entity facts Stats and the heartbeat report, kept as
// the facts change. The visible agents are counted by visibility (its
// invisible count), which alone writes agent.visible. Guarded by t.mu.
type counts struct {
	inRoster int // agents with inRoster
	swept    int // agents with inRoster and bySweep
	phones   int // phones whose state is present
}

// setInRoster is the one writer of agent.inRoster, so that the counts
// cannot drift from it. Callers hold t.mu.
func (t *Tenant) setInRoster(a *agent, in bool) {
	if a.inRoster == in {
		return
	}
	a.inRoster = in
	t.counts.inRoster += delta(in)
	if a.bySweep {
		t.counts.swept += delta(in)
	}
}

// setBySweep is the one writer of agent.bySweep, for the same reason.
// Callers hold t.mu.
func (t *Tenant) setBySweep(a *agent, by bool) {
	if a.bySweep == by {
		return
	}
	a.bySweep = by
	if a.inRoster {
		t.counts.swept += delta(by)
	}
}

// phoneChanged books a change of a phone's state for the counts: had is
// whether the phone had a state before the change, has whether it has one
// now (false for a phone dropped from t.phones). Callers hold t.mu.
func (t *Tenant) phoneChanged(had, has bool) {
	if had != has {
		t.counts.phones += delta(has)
	}
}

// delta is what a count moves by when a fact becomes on (true) or off.
func delta(on bool) int {
	if on {
		return 1
	}
	return -1
}
