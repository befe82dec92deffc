package poller

import (
	"context"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// missingToDelete is how many complete walks in a row must miss an entity
// before it is deleted. Offset paging is no snapshot: an entity can slide
// past the page boundary while a walk is under way (a removal on a page
// already read, an addition at the end, the total unchanged) and be missed
// by one complete walk while it still exists. A second walk, which starts
// after the first has ended, confirms a real removal. The same rule keeps
// an empty but well-formed roster from deleting every agent at once.
const missingToDelete = 2

// walkDone books a walk's outcome and says whether to apply its answer.
// A walk cut short by the end of the term says nothing (another instance
// may own the tenant now); one whose own deadline passed failed, as with
// any other error: counted, and the scope reported not visible. Callers
// hold t.mu.
func (t *Tenant) walkDone(kind, scope string, err error, now time.Time, agents func() string) (apply bool, _ error) {
	switch {
	case t.termOver():
		return false, nil
	case err != nil:
		t.pollsBad.Add(1)
		t.observePoll(kind, "error")
		t.vis.scopeLost(scope, now, reason(err), agents)
		return false, err
	}
	t.pollsOK.Add(1)
	t.observePoll(kind, "ok")
	t.vis.scopeRestored(scope, agents)
	return true, nil
}

// pollRoster applies one complete queryAgentInfo answer.
func (t *Tenant) pollRoster(ctx context.Context) error {
	r, err := t.cfg.Directory.Roster(ctx)
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if apply, err := t.walkDone("roster", schemas.ScopeSoftphone, err, now, t.rosterRanges); !apply {
		return err
	}
	t.lastRoster = now
	first := !t.rosterDone

	seen := make(map[int]struct{}, len(r.Agents))
	for _, ra := range r.Agents {
		if schemas.ValidWorkNo(ra.WorkNo) != nil {
			t.log.Warn("roster entry skipped: work number out of range", "work_no", ra.WorkNo)
			continue
		}
		if _, dup := seen[ra.WorkNo]; dup {
			continue
		}
		seen[ra.WorkNo] = struct{}{}
		a := t.track(ra.WorkNo, now)
		a.missing = 0
		if !a.inRoster {
			t.setInRoster(a, true)
			a.fromFirstRoster = first
			if a.monitor >= 0 {
				t.sched.push(a)
			} else {
				t.vis.lost(a, now, reason(errNoMonitor))
			}
		}
		sp := schemas.AgentSoftphone{
			SIPAccount:    ra.SIPAccount,
			AccountCode:   ra.AccountCode,
			SIPServerIP:   r.SIPServerIP,
			SIPServerPort: r.SIPServerPort,
		}
		if !a.softphone.present || a.softphone.state != sp {
			subject := schemas.AgentSoftphoneSubject(t.cfg.Tenant, a.workNo)
			emitChange(t, &a.softphone, schemas.Key{Tenant: t.cfg.Tenant, WorkNo: a.workNo}, subject, schemas.TypeAgentSoftphone, &sp, a.fromFirstRoster, now)
		} else {
			a.softphone.seen = now
		}
	}
	for workNo, a := range t.agents {
		if _, ok := seen[workNo]; ok || !a.inRoster && !a.softphone.present && !a.calls.present {
			continue // listed, or nothing left to delete
		}
		// Only complete, successful rosters may remove an agent, and two
		// of them in a row.
		if a.missing++; a.missing >= missingToDelete {
			t.removeAgent(a, now)
		}
	}
	wasDone := t.rosterDone && t.phonesDone
	t.rosterDone = true
	t.firstViewDone(wasDone, now)
	t.wake()
	return nil
}

// removeAgent records that the roster no longer lists an agent: its
// softphone and calls entities are deleted and it is no longer polled. The
// struct stays as a tombstone so that sequences continue if it comes back.
func (t *Tenant) removeAgent(a *agent, now time.Time) {
	key := schemas.Key{Tenant: t.cfg.Tenant, WorkNo: a.workNo}
	if a.softphone.present {
		subject := schemas.AgentSoftphoneSubject(t.cfg.Tenant, a.workNo)
		if !emitChange[schemas.AgentSoftphone](t, &a.softphone, key, subject, schemas.TypeAgentSoftphone, nil, false, now) {
			return // retried on the next roster
		}
	}
	if a.calls.present {
		subject := schemas.AgentCallsSubject(t.cfg.Tenant, a.workNo)
		if !emitChange[schemas.AgentCalls](t, &a.calls, key, subject, schemas.TypeAgentCalls, nil, false, now) {
			return
		}
	}
	if f := a.sweep; f != nil {
		if f.callsV2.present && !emitChangeFrom[schemas.AgentCallsV2](t, &f.callsV2, key, schemas.AgentCallsV2Subject(t.cfg.Tenant, a.workNo), schemas.TypeAgentCallsV2, nil, false, now, schemas.SourceGateway) {
			return
		}
		if f.state.present && !emitChangeFrom[schemas.AgentState](t, &f.state, key, schemas.AgentStateSubject(t.cfg.Tenant, a.workNo), schemas.TypeAgentState, nil, false, now, schemas.SourceGateway) {
			return
		}
		f.calls = nil
	}
	t.setBySweep(a, false)
	t.setInRoster(a, false)
	a.fromFirstRoster = false
	a.missing = 0
	t.sched.remove(a)
	t.vis.forget(a)
}

// pollPhones applies one complete queryPhone walk.
func (t *Tenant) pollPhones(ctx context.Context) error {
	list, err := t.cfg.Directory.Phones(ctx)
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if apply, err := t.walkDone("phones", schemas.ScopePhones, err, now, nil); !apply {
		return err
	}
	t.lastPhones = now
	first := !t.phonesDone
	seen := make(map[string]struct{}, len(list))
	for _, p := range list {
		if p.PhoneNum == "" || len(p.PhoneNum) > 64 {
			t.log.Warn("phone entry skipped: empty or overlong number")
			continue
		}
		if _, dup := seen[p.PhoneNum]; dup {
			continue // listed twice in one walk: the first entry stands
		}
		seen[p.PhoneNum] = struct{}{}
		st := schemas.PhoneState{Status: schemas.PhoneStatus(p.Status), StatusCode: p.Status, ConfigID: p.ID}
		ph := t.phones[p.PhoneNum]
		if ph == nil {
			ph = &phone{fromFirstWalk: first}
			t.phones[p.PhoneNum] = ph
		}
		ph.missing = 0
		if !ph.state.present || ph.state.state != st {
			t.emitPhone(p.PhoneNum, ph, &st, now, ph.fromFirstWalk)
		} else {
			ph.state.seen = now
		}
	}
	for num, ph := range t.phones {
		if _, ok := seen[num]; ok || !ph.state.present {
			continue
		}
		if ph.missing++; ph.missing >= missingToDelete {
			ph.fromFirstWalk = false // listed again later, it is a new phone
			t.emitPhone(num, ph, nil, now, false)
		}
	}
	wasDone := t.rosterDone && t.phonesDone
	t.phonesDone = true
	t.firstViewDone(wasDone, now)
	return nil
}

func (t *Tenant) emitPhone(num string, ph *phone, st *schemas.PhoneState, now time.Time, first bool) {
	subject := schemas.PhoneStateSubject(t.cfg.Tenant, num)
	had := ph.state.present
	if emitChange(t, &ph.state, schemas.Key{Tenant: t.cfg.Tenant, PhoneNum: num}, subject, schemas.TypePhoneState, st, first, now) {
		ph.missing = 0
		t.phoneChanged(had, ph.state.present)
	}
}
