package poller

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// pollCalls asks for one agent's call IDs and applies the answer.
func (t *Tenant) pollCalls(ctx context.Context, a *agent) {
	t.mu.Lock()
	mon := a.monitor
	dispatched := a.due
	t.mu.Unlock()

	var ids []string
	var err error
	if mon < 0 {
		err = errNoMonitor
	} else if src := t.cfg.Monitors[mon].Source; !src.Ready() {
		err = ErrMonitorNotSignedIn
	} else {
		t.everReady[mon].Store(true)
		// The source bounds each request itself (the vendor client applies
		// its request timeout); a second timer per poll would only cost.
		ids, err = src.AllCallInfo(ctx, a.workNo)
	}
	now := time.Now()

	t.mu.Lock()
	defer t.mu.Unlock()
	a.inFlight = false
	if ctx.Err() != nil {
		return // the term is over: an interrupted poll says nothing about the agent
	}
	if t.agents[a.workNo] != a || !a.inRoster {
		return // removed from the roster while in flight
	}
	if a.bySweep {
		return // the sweep took the agent over while this poll was in flight
	}
	if errors.Is(err, ErrMonitorNotSignedIn) && !t.everReady[mon].Load() && now.Sub(t.started) < 2*t.cfg.RequestTimeout {
		// The first sign-in is still under way: nothing was lost yet.
		a.due = now.Add(t.cfg.CallsInterval)
		t.requeue(a)
		return
	}
	if err != nil {
		t.pollsBad.Add(1)
		t.observePoll("calls", "error")
		t.vis.lost(a, now, reason(err))
		// The agent's own interval, not the active one: a failing vendor
		// must not see every idle agent polled fifteen times as often.
		a.due = dispatched.Add(t.interval(a))
		t.requeue(a)
		return
	}
	t.lastCalls = now
	t.pollsOK.Add(1)
	t.vis.restored(a)
	ids = normaliseCalls(ids)
	outcome := "ok"
	if !a.calls.present || !slices.Equal(a.calls.state.CallIDs, ids) {
		subject := schemas.AgentCallsSubject(t.cfg.Tenant, a.workNo)
		key := schemas.Key{Tenant: t.cfg.Tenant, WorkNo: a.workNo}
		if !emitChange(t, &a.calls, key, subject, schemas.TypeAgentCalls, &schemas.AgentCalls{CallIDs: ids}, a.fromFirstRoster, now) {
			outcome = "refused"
		} else if t.cfg.CMS != nil {
			t.emitCallsV2(a, schemas.SourceGateway, now)
		}
	} else {
		a.calls.seen = now
	}
	t.observePoll("calls", outcome)
	if len(ids) > 0 {
		a.lastInCall = now
	}
	wasActive := a.active
	a.active = len(ids) > 0 || now.Sub(a.lastInCall) < t.cfg.ActiveWindow
	switch {
	case a.active:
		a.due = dispatched.Add(t.cfg.CallsInterval)
	case wasActive:
		// Entering the idle queue: a random phase spreads the idle agents
		// over their interval, so that agents first polled together (at
		// start, or after an outage) do not all fall due in the same second.
		a.due = now.Add(time.Duration(jitterFraction() * float64(t.cfg.IdleInterval)))
	default:
		a.due = dispatched.Add(t.cfg.IdleInterval)
	}
	t.requeue(a)
}

// interval is how often an agent is polled in its current class.
func (t *Tenant) interval(a *agent) time.Duration {
	if a.active {
		return t.cfg.CallsInterval
	}
	return t.cfg.IdleInterval
}
