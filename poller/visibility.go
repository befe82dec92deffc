package poller

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/schemas"
)

// visibility gathers which agents (calls scope) and which tenant-wide
// observations (softphone and phones scopes) the bridge lost or regained
// since the last flush. Only net transitions are reported: an agent that was
// lost and regained between two flushes produces nothing, because nothing
// was reported wrongly in between. Guarded by the tenant's mutex.
type visibility struct {
	lostSince     map[int]time.Time
	lostReason    string
	restoredSince map[int]time.Time
	invisible     int
	scopes        map[string]*scopeState
	requeued      []schemas.Visibility
	states        statesPicture // its own event type, see statesvis.go
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
		lostSince:     make(map[int]time.Time),
		restoredSince: make(map[int]time.Time),
		states:        newStatesPicture(),
		scopes: map[string]*scopeState{
			schemas.ScopeSoftphone: {},
			schemas.ScopePhones:    {},
		},
	}
}

func (v *visibility) lost(a *agent, now time.Time, reason string) {
	if !a.visible {
		return
	}
	a.visible = false
	v.invisible++
	if _, ok := v.restoredSince[a.workNo]; ok {
		delete(v.restoredSince, a.workNo)
		return
	}
	v.lostSince[a.workNo] = now
	if v.lostReason == "" {
		v.lostReason = reason
	}
}

func (v *visibility) restored(a *agent) {
	if a.visible {
		return
	}
	a.visible = true
	v.invisible--
	if _, ok := v.lostSince[a.workNo]; ok {
		delete(v.lostSince, a.workNo)
		return
	}
	v.restoredSince[a.workNo] = time.Now()
}

// forget drops an agent that left the roster from the books.
func (v *visibility) forget(a *agent) {
	if !a.visible {
		a.visible = true
		v.invisible--
	}
	delete(v.lostSince, a.workNo)
	delete(v.restoredSince, a.workNo)
	v.forgetState(a, time.Now())
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

func (v *visibility) invisibleCount() int { return v.invisible }

// drain returns the pending transitions as events (without seq) and
// clears them.
func (v *visibility) drain(tenant string, now time.Time) []schemas.Visibility {
	out := v.requeued
	v.requeued = nil
	if len(v.lostSince) > 0 {
		out = append(out, callsTransition(tenant, schemas.VisibilityLost, v.lostReason, v.lostSince, now))
		clear(v.lostSince)
		v.lostReason = ""
	}
	if len(v.restoredSince) > 0 {
		out = append(out, callsTransition(tenant, schemas.VisibilityRestored, "", v.restoredSince, now))
		clear(v.restoredSince)
	}
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

// callsTransition is one calls-scope event for the agents in since (work
// number to when each changed), dated at the earliest of them.
func callsTransition(tenant, state, reason string, since map[int]time.Time, now time.Time) schemas.Visibility {
	first := now
	for _, t := range since {
		if t.Before(first) {
			first = t
		}
	}
	nums := slices.Collect(maps.Keys(since))
	return schemas.Visibility{
		Tenant: tenant, State: state, Scope: schemas.ScopeCalls,
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
