package poller

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/schemas"
)

// visibility gathers which agents (calls and states scopes) and which
// tenant-wide observations (softphone and phones scopes) the bridge lost or
// regained since the last flush. Only net transitions are reported: an
// agent that was lost and regained between two flushes produces nothing,
// because nothing was reported wrongly in between. Guarded by the tenant's
// mutex.
type visibility struct {
	calls    agentScope // agent.visible
	states   agentScope // agent.sweep.stateVisible (tenants with CMS)
	scopes   map[string]*scopeState
	requeued []schemas.Visibility
}

// agentScope is one scope observed agent by agent: the agents lost and
// regained since the last flush (work number to when), and how many are
// lost now. Each agent's own flag says whether it is visible in the scope.
type agentScope struct {
	scope         string
	lostSince     map[int]time.Time
	lostReason    string
	restoredSince map[int]time.Time
	invisible     int
}

type scopeState struct {
	down    bool
	pending string // "", lost or restored
	since   time.Time
	reason  string
	agents  string
}

func newVisibility() visibility {
	return visibility{
		calls:  newAgentScope(schemas.ScopeCalls),
		states: newAgentScope(schemas.ScopeStates),
		scopes: map[string]*scopeState{
			schemas.ScopeSoftphone: {},
			schemas.ScopePhones:    {},
		},
	}
}

func newAgentScope(scope string) agentScope {
	return agentScope{scope: scope, lostSince: make(map[int]time.Time), restoredSince: make(map[int]time.Time)}
}

// lost and restored report the agent's calls lost or observed again.
func (v *visibility) lost(a *agent, now time.Time, reason string) {
	v.calls.lost(a.workNo, &a.visible, now, reason)
}

func (v *visibility) restored(a *agent) { v.calls.restored(a.workNo, &a.visible) }

// stateLost and stateRestored report the agent's state (from the CMS
// sweep) lost or observed again.
func (v *visibility) stateLost(a *agent, now time.Time, reason string) {
	v.states.lost(a.workNo, &a.sweepFacts().stateVisible, now, reason)
}

func (v *visibility) stateRestored(a *agent) {
	v.states.restored(a.workNo, &a.sweepFacts().stateVisible)
}

// forget drops an agent that left the roster from the books.
func (v *visibility) forget(a *agent) {
	v.calls.forget(a.workNo, &a.visible)
	if a.sweep != nil {
		v.states.forget(a.workNo, &a.sweep.stateVisible)
	}
}

func (s *agentScope) lost(workNo int, visible *bool, now time.Time, reason string) {
	if !*visible {
		return
	}
	*visible = false
	s.invisible++
	if _, ok := s.restoredSince[workNo]; ok {
		delete(s.restoredSince, workNo)
		return
	}
	s.lostSince[workNo] = now
	if s.lostReason == "" {
		s.lostReason = reason
	}
}

func (s *agentScope) restored(workNo int, visible *bool) {
	if *visible {
		return
	}
	*visible = true
	s.invisible--
	if _, ok := s.lostSince[workNo]; ok {
		delete(s.lostSince, workNo)
		return
	}
	s.restoredSince[workNo] = time.Now()
}

func (s *agentScope) forget(workNo int, visible *bool) {
	if !*visible {
		*visible = true
		s.invisible--
	}
	delete(s.lostSince, workNo)
	delete(s.restoredSince, workNo)
}

// drain appends the scope's pending transitions to out and clears them.
func (s *agentScope) drain(out []schemas.Visibility, tenant string, now time.Time) []schemas.Visibility {
	if len(s.lostSince) > 0 {
		out = append(out, agentsTransition(tenant, s.scope, schemas.VisibilityLost, s.lostReason, s.lostSince, now))
		clear(s.lostSince)
		s.lostReason = ""
	}
	if len(s.restoredSince) > 0 {
		out = append(out, agentsTransition(tenant, s.scope, schemas.VisibilityRestored, "", s.restoredSince, now))
		clear(s.restoredSince)
	}
	return out
}

// scopeLost and scopeRestored take the affected agents as a function: the
// ranges of a 60,000-agent roster are only worth computing on a transition.
func (v *visibility) scopeLost(scope string, now time.Time, reason string, agents func() string) {
	s := v.scopes[scope]
	if s.down {
		return
	}
	s.down = true
	if s.pending == schemas.VisibilityRestored {
		s.pending = ""
		return
	}
	s.pending, s.since, s.reason, s.agents = schemas.VisibilityLost, now, reason, ranges(agents)
}

func (v *visibility) scopeRestored(scope string, agents func() string) {
	s := v.scopes[scope]
	if !s.down {
		return
	}
	s.down = false
	if s.pending == schemas.VisibilityLost {
		s.pending = ""
		return
	}
	s.pending, s.since, s.reason, s.agents = schemas.VisibilityRestored, time.Now(), "", ranges(agents)
}

func ranges(f func() string) string {
	if f == nil {
		return ""
	}
	return f()
}

func (v *visibility) scopeDown(scope string) bool { return v.scopes[scope].down }

// invisibleCount is how many agents' calls are not visible.
func (v *visibility) invisibleCount() int { return v.calls.invisible }

// statesInvisibleCount is how many agents' states are not visible.
func (v *visibility) statesInvisibleCount() int { return v.states.invisible }

// drain returns the pending transitions as events (without seq) and
// clears them.
func (v *visibility) drain(tenant string, now time.Time) []schemas.Visibility {
	out := v.requeued
	v.requeued = nil
	out = v.calls.drain(out, tenant, now)
	out = v.states.drain(out, tenant, now)
	for _, scope := range []string{schemas.ScopeSoftphone, schemas.ScopePhones} {
		s := v.scopes[scope]
		if s.pending == "" {
			continue
		}
		ev := schemas.Visibility{
			Tenant: tenant, State: s.pending, Scope: scope, Agents: s.agents,
			Since: s.since.UTC(), Reason: s.reason,
		}
		if s.agents != "" {
			if nums, err := schemas.ParseRanges(s.agents); err == nil {
				ev.Count = len(nums)
			}
		}
		out = append(out, ev)
		s.pending = ""
	}
	return out
}

// agentsTransition is one event of a per-agent scope for the agents in
// since (work number to when each changed), dated at the earliest of them.
func agentsTransition(tenant, scope, state, reason string, since map[int]time.Time, now time.Time) schemas.Visibility {
	first := now
	for _, t := range since {
		if t.Before(first) {
			first = t
		}
	}
	nums := slices.Collect(maps.Keys(since))
	return schemas.Visibility{
		Tenant: tenant, State: state, Scope: scope,
		Agents: schemas.FormatRanges(nums), Count: len(nums), Since: first.UTC(), Reason: reason,
	}
}

// requeue puts back events the sink refused, to go first next time.
func (v *visibility) requeue(events []schemas.Visibility) {
	v.requeued = append(slices.Clone(events), v.requeued...)
}

// reason names an error for a visibility event from a short fixed
// vocabulary (cec.Reason), never its text: the poller's own two causes,
// then the vendor client's classes.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrMonitorNotSignedIn):
		return "session_not_ready"
	case errors.Is(err, errNoMonitor):
		return "no_monitor"
	}
	return cec.Reason(err)
}
