package poller

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/schemas"
)

// The CMS sweep asks about every agent of the roster every SweepInterval,
// thousands per request (queryagentcalls for the calls,
// agentstatusinfobyagentids for the agent states), so a call starting on an
// idle agent is seen within one sweep instead of one idle interval.
//
// Each agent's calls have one source at a time. An agent the sweep reports
// on (bySweep) is not polled one by one. An agent it cannot cover (a failed
// chunk, an agent the answer leaves out, an agent of no configured VDN, CMS
// unavailable) goes back to per-agent polling, and the failed chunk's
// agents are reported not visible until something observes them again. A
// per-agent polled agent returns to the sweep only when a sweep agrees with
// what the bridge last published: CMS may trail the gateway, and taking a
// lagging sweep's word over a fresher poll would report a call ended (or
// not yet begun) that is not.
//
// Agent states have no other source. A states chunk that fails, or an
// agent a states answer leaves out, puts those agents' states in the
// picture of bridge.states_visibility (apart from their calls) until a
// states answer covers them again; while the whole sweep is unavailable
// every swept agent's state is in it.
//
// A sweep's observation describes the moment it was answered minus the
// configured CMSLag. With Confirm, a change the sweep found is published
// only after an allcallinfoEx of the agent confirms it (the gateway's
// answer is what is published).

// sweepFacts is what the poller keeps of the sweep's richer facts about an
// agent: calls with status and direction, and the agent state.
type sweepFacts struct {
	callsV2 aspect[schemas.AgentCallsV2]
	state   aspect[schemas.AgentState]
	calls   []cec.Call // the calls as the last sweep described them
}

// unavailableBackoff is how long the sweep waits after CMS refused a whole
// sweep for a reason a retry cannot fix (signature, licence, whitelist):
// thirty sweeps, at most 30 s.
func (t *Tenant) unavailableBackoff() time.Duration {
	return min(30*time.Second, 30*t.cfg.SweepInterval)
}

// sweepStatus is the tenant's CMS sweep state, for Stats and readiness.
type sweepStatus struct {
	state  string // "", "ok", "partial" or "unavailable"
	reason string
	until  time.Time // unavailable: the next try
	logged string    // the last unavailability reason logged
}

// Sweep states (Stats.Sweep).
const (
	SweepOK          = "ok"
	SweepPartial     = "partial"     // some chunks failed: their agents are polled one by one
	SweepUnavailable = "unavailable" // CMS refused: every agent is polled one by one
)

// sweep runs one sweep of the roster.
func (t *Tenant) sweep(ctx context.Context) error {
	t.mu.Lock()
	if t.sweepSt.state == SweepUnavailable && time.Now().Before(t.sweepSt.until) {
		t.mu.Unlock()
		return nil
	}
	agents := make([]int, 0, len(t.agents))
	for w, a := range t.agents {
		if a.inRoster {
			agents = append(agents, w)
		}
	}
	t.mu.Unlock()
	if len(agents) == 0 {
		return nil
	}
	slices.Sort(agents)
	cms := t.cfg.CMS
	callChunks, unplanned := cms.Plan(agents, cec.MaxCallsAgents)
	stateChunks, _ := cms.Plan(agents, cec.MaxStatesAgents)
	// Sweeps serve people waiting for a screen-pop: ahead of the polls.
	pctx := cec.WithPriority(ctx)
	var calls []cec.ChunkResult[*cec.CallsAnswer]
	var states []cec.ChunkResult[*cec.StatesAnswer]
	var wg sync.WaitGroup
	wg.Go(func() { calls = cec.Sweep(pctx, callChunks, t.cfg.SweepConcurrency, cms.QueryAgentCalls) })
	wg.Go(func() { states = cec.Sweep(pctx, stateChunks, t.cfg.SweepConcurrency, cms.QueryAgentStates) })
	wg.Wait()

	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.termOver() {
		return nil
	}
	for _, w := range unplanned {
		if a := t.agents[w]; a != nil && a.inRoster {
			t.toGateway(a, now, "")
		}
	}
	failed, refused := 0, error(nil)
	for _, r := range calls {
		if r.Err != nil {
			failed++
			t.observePoll("sweep", "error")
			if refusedForGood(r.Err) {
				refused = r.Err
			}
			for _, w := range r.Chunk.Agents {
				if a := t.agents[w]; a != nil && a.inRoster {
					t.toGateway(a, now, reason(r.Err))
				}
			}
			continue
		}
		t.observePoll("sweep", "ok")
		t.applyCallsAnswer(r.Answer, now)
	}
	for _, r := range states {
		if r.Err != nil {
			// Nothing else observes agent states: they are lost until a
			// states answer covers the agents again.
			for _, w := range r.Chunk.Agents {
				if a := t.agents[w]; a != nil && a.inRoster {
					t.vis.stateLost(a, now, reason(r.Err))
				}
			}
			continue
		}
		t.applyStatesAnswer(r.Answer, now)
	}
	err := t.sweepOutcome(len(callChunks), failed, refused, now)
	t.vis.states.swept = true
	if t.sweepSt.state == SweepUnavailable {
		// No sweep until the retry, so no states answer: even a states
		// chunk that just succeeded is not observed from now on.
		for _, ch := range stateChunks {
			for _, w := range ch.Agents {
				if a := t.agents[w]; a != nil && a.inRoster {
					t.vis.stateLost(a, now, t.sweepSt.reason)
				}
			}
		}
	}
	return err
}

// refusedForGood tells the errors no retry in the next second can fix.
func refusedForGood(err error) bool {
	return errors.Is(err, cec.ErrUnauthorized) || errors.Is(err, cec.ErrNotSupported) || errors.Is(err, cec.ErrInvalidRequest)
}

// sweepOutcome records how the sweep went; a CMS that refused every chunk
// for good is left alone for a while, and said so once. Callers hold t.mu.
func (t *Tenant) sweepOutcome(chunks, failed int, refused error, now time.Time) error {
	st := &t.sweepSt
	switch {
	case failed == 0:
		if st.state == SweepUnavailable {
			t.log.Info("CMS sweep available again")
		}
		st.state, st.reason, st.logged = SweepOK, "", ""
		return nil
	case failed < chunks || refused == nil:
		st.state, st.reason = SweepPartial, ""
		return errSweepFailed
	}
	st.state, st.reason, st.until = SweepUnavailable, reason(refused), now.Add(t.unavailableBackoff())
	if st.reason != st.logged {
		st.logged = st.reason
		t.log.Warn("CMS sweep unavailable; every agent is polled one by one", "err", refused, "retry_in", t.unavailableBackoff())
	}
	return errSweepFailed
}

var errSweepFailed = errors.New("poller: sweep chunks failed")

// toGateway hands an agent back to per-agent polling, due at once; a
// non-empty lostReason also reports it not visible until a poll or a sweep
// observes it. Callers hold t.mu.
func (t *Tenant) toGateway(a *agent, now time.Time, lostReason string) {
	if lostReason != "" {
		t.vis.lost(a, now, lostReason)
	}
	if a.bySweep {
		t.setBySweep(a, false)
		a.active = true
	}
	t.pollSoon(a, now)
}

// pollSoon makes a per-agent polled agent due now. Callers hold t.mu.
func (t *Tenant) pollSoon(a *agent, now time.Time) {
	if a.inFlight || a.monitor < 0 {
		return
	}
	t.sched.remove(a)
	a.due = now
	t.requeue(a)
}

// applyCallsAnswer takes one chunk's calls observation. Callers hold t.mu.
func (t *Tenant) applyCallsAnswer(ans *cec.CallsAnswer, now time.Time) {
	obs := ans.Received.Add(-t.cfg.CMSLag)
	for _, ac := range ans.Agents {
		a := t.agents[ac.WorkNo]
		if a == nil || !a.inRoster {
			continue
		}
		t.applySweptCalls(a, ac, obs, now)
	}
	for _, w := range ans.NotObserved {
		// Not observed is not "no call": the gateway asks.
		if a := t.agents[w]; a != nil && a.inRoster {
			t.toGateway(a, now, "")
		}
	}
}

// applySweptCalls applies one agent's calls as a sweep observed them at
// obs. Callers hold t.mu.
func (t *Tenant) applySweptCalls(a *agent, ac cec.AgentCalls, obs, now time.Time) {
	f := a.sweepFacts()
	f.calls = ac.Calls
	ids := ac.CallIDs()
	if len(ids) > 0 {
		a.lastInCall = obs
	}
	same := a.calls.present && slices.Equal(a.calls.state.CallIDs, ids)
	switch {
	case !a.bySweep && a.calls.present && !same:
		// A polled agent whose sweep disagrees: the gateway decides.
		t.pollSoon(a, now)
		return
	case !a.bySweep:
		// The sweep agrees with what was published (or nothing was yet):
		// it reports on the agent from now on. Agreement is safe to act on
		// even when the sweep's data is older than the last poll: later
		// sweeps older than that poll are ignored (below).
		t.setBySweep(a, true)
		t.sched.remove(a)
	case a.calls.present && !obs.After(a.calls.seen):
		return // older than what the bridge already knows
	}
	t.vis.restored(a)
	if same {
		if obs.After(a.calls.seen) {
			a.calls.seen = obs
		}
		t.emitCallsV2(a, schemas.SourceCMS, obs)
		return
	}
	if t.cfg.Confirm && a.calls.present {
		// Ask the gateway before publishing; its answer is what counts.
		t.setBySweep(a, false)
		t.pollSoon(a, now)
		return
	}
	subject := schemas.AgentCallsSubject(t.cfg.Tenant, a.workNo)
	key := schemas.Key{Tenant: t.cfg.Tenant, WorkNo: a.workNo}
	if emitChange(t, &a.calls, key, subject, schemas.TypeAgentCalls, &schemas.AgentCalls{CallIDs: ids}, a.fromFirstRoster, obs) {
		t.emitCallsV2(a, schemas.SourceCMS, obs)
	}
}

// emitCallsV2 publishes the agent's calls with status and direction when
// they differ from the last published: the call IDs from a.calls, each
// call's status and direction from the last sweep that described it
// ("unknown" for a call only the gateway has named). Callers hold t.mu.
func (t *Tenant) emitCallsV2(a *agent, source string, at time.Time) {
	f := a.sweepFacts()
	if !a.calls.present {
		return
	}
	v2 := schemas.AgentCallsV2{CallIDs: a.calls.state.CallIDs, Calls: make([]schemas.Call, 0, len(a.calls.state.CallIDs))}
	for _, id := range a.calls.state.CallIDs {
		c := schemas.Call{ID: id, Status: schemas.Unknown, Direction: schemas.Unknown}
		if i, ok := slices.BinarySearchFunc(f.calls, id, func(c cec.Call, id string) int { return strings.Compare(c.ID, id) }); ok {
			sc := f.calls[i]
			c.Status, c.Direction, c.MediaType = sc.Status.String(), sc.Direction.String(), sc.MediaType
		}
		v2.Calls = append(v2.Calls, c)
	}
	if f.callsV2.present && slices.Equal(f.callsV2.state.Calls, v2.Calls) {
		f.callsV2.seen = at
		return
	}
	subject := schemas.AgentCallsV2Subject(t.cfg.Tenant, a.workNo)
	key := schemas.Key{Tenant: t.cfg.Tenant, WorkNo: a.workNo}
	emitChangeFrom(t, &f.callsV2, key, subject, schemas.TypeAgentCallsV2, &v2, a.fromFirstRoster, at, source)
}

// applyStatesAnswer takes one chunk's agent states. A state is published
// when its code changes, or when it provably began after the published
// one did (the agent left the state and came back between two looks, see
// reentered); neither the second of rounding in the time in state nor a
// slow answer is a change. An agent the answer leaves out is not observed:
// its state is not observed. Callers hold t.mu.
func (t *Tenant) applyStatesAnswer(ans *cec.StatesAnswer, now time.Time) {
	obs := ans.Received.Add(-t.cfg.CMSLag)
	sent := ans.Sent.Add(-t.cfg.CMSLag)
	for _, as := range ans.Agents {
		a := t.agents[as.WorkNo]
		if a == nil || !a.inRoster {
			continue
		}
		t.vis.stateRestored(a, now)
		st := schemas.AgentState{
			State:     as.State.String(),
			StateCode: int(as.State),
			Since:     obs.Add(-as.InState).Truncate(time.Second).UTC(),
			Reason:    as.Reason,
		}
		if as.PrevState != cec.AgentStateUnknown {
			st.PrevState = as.PrevState.String()
		}
		if !as.SignedInAt.IsZero() {
			at := as.SignedInAt.UTC()
			st.SignedInAt = &at
		}
		f := a.sweepFacts()
		if f.state.present && f.state.state.StateCode == st.StateCode && !reentered(f.state.state.Since, sent, as.InState) {
			f.state.seen = obs
			continue
		}
		subject := schemas.AgentStateSubject(t.cfg.Tenant, a.workNo)
		key := schemas.Key{Tenant: t.cfg.Tenant, WorkNo: a.workNo}
		emitChangeFrom(t, &f.state, key, subject, schemas.TypeAgentState, &st, a.fromFirstRoster, obs, schemas.SourceCMS)
	}
	for _, w := range ans.NotObserved {
		if a := t.agents[w]; a != nil && a.inRoster {
			t.vis.stateLost(a, now, reasonNotObserved)
		}
	}
}

// reasonNotObserved is the visibility reason of an agent a CMS answer
// left out.
const reasonNotObserved = "not_observed"

// reentered tells whether a state CMS reports again (in state for inState,
// asked at sent) began after the published one, which started at
// published. CMS counts the time in state in whole seconds at some moment
// between the request leaving and its answer arriving, so the state began
// after sent-inState-1s whatever the answer's delay; the published start,
// cut to the second from a like answer, lies less than a second before
// the true one. Only a start after published+1s is a new stint.
func reentered(published, sent time.Time, inState time.Duration) bool {
	earliest := sent.Add(-inState - time.Second)
	return !earliest.Before(published.Add(time.Second))
}

// sweepFacts returns the agent's sweep facts, creating them.
func (a *agent) sweepFacts() *sweepFacts {
	if a.sweep == nil {
		a.sweep = &sweepFacts{}
	}
	return a.sweep
}
