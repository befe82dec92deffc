package poller

import (
	"context"
	"errors"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// heartbeat emits the bridge's liveness event.
func (t *Tenant) heartbeat(context.Context) error {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !(t.rosterDone && t.phonesDone) && now.Sub(t.started) < 2*t.cfg.RequestTimeout {
		// The first roster and phone walks are under way; the heartbeat
		// that follows them says what is visible (see firstViewDone).
		return nil
	}
	t.heartbeatLocked(now)
	return nil
}

// firstViewDone sends a heartbeat as soon as the first roster and phone
// walks have both completed, so that readers learn the visibility picture
// at once rather than an interval later. Callers hold t.mu.
func (t *Tenant) firstViewDone(wasDone bool, now time.Time) {
	if !wasDone && t.rosterDone && t.phonesDone {
		t.heartbeatLocked(now)
	}
}

func (t *Tenant) heartbeatLocked(now time.Time) {
	tracked := t.counts.inRoster
	hb := schemas.Heartbeat{
		Tenant:        t.cfg.Tenant,
		Instance:      t.cfg.Instance,
		Started:       t.started.UTC(),
		AgentsTracked: tracked,
		AgentsVisible: tracked - t.vis.invisibleCount(),
		NotVisible:    t.notVisibleLocked(),
		// Not visible until observed: a heartbeat at the start of a term
		// must not vouch for a roster or phone list nobody has read yet.
		RosterVisible:  t.rosterDone && !t.vis.scopeDown(schemas.ScopeSoftphone),
		PhonesVisible:  t.phonesDone && !t.vis.scopeDown(schemas.ScopePhones),
		PhonesTracked:  t.counts.phones,
		EventsEmitted:  t.emitted.Load(),
		LastCallsPoll:  t.lastCalls.UTC(),
		LastRosterPoll: t.lastRoster.UTC(),
		LastPhonesPoll: t.lastPhones.UTC(),
	}
	subject := schemas.BridgeSubject(t.cfg.Tenant, schemas.BridgeHeartbeat)
	hb.Seq = t.hbSeq + 1
	hb.PrevID = prevID(subject, hb.Seq)
	if t.emit(subject, schemas.TypeBridgeHeartbeat, hb.Seq, now, hb) {
		t.hbSeq = hb.Seq
	}
}

// flushVisibility turns the visibility changes gathered since the last
// flush into events, and the states picture into one if it changed.
func (t *Tenant) flushVisibility(context.Context) error {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	pending := t.vis.drain(t.cfg.Tenant, now)
	subject := schemas.BridgeSubject(t.cfg.Tenant, schemas.BridgeVisibility)
	for i, v := range pending {
		v.Seq = t.visSeq + 1
		v.PrevID = prevID(subject, v.Seq)
		if !t.emit(subject, schemas.TypeBridgeVisibility, v.Seq, now, v) {
			t.vis.requeue(pending[i:])
			return errVisibilityRefused
		}
		t.visSeq = v.Seq
	}
	return t.flushStatesVisibility(now)
}

var errVisibilityRefused = errors.New("poller: visibility event refused")

// notVisibleLocked lists the tracked agents whose calls cannot be observed
// now, as ranges.
func (t *Tenant) notVisibleLocked() string {
	if t.vis.invisibleCount() == 0 {
		return ""
	}
	var nums []int
	for w, a := range t.agents {
		if a.inRoster && !a.visible {
			nums = append(nums, w)
		}
	}
	return schemas.FormatRanges(nums)
}

func (t *Tenant) rosterRanges() string {
	nums := make([]int, 0, len(t.agents))
	for w, a := range t.agents {
		if a.inRoster {
			nums = append(nums, w)
		}
	}
	return schemas.FormatRanges(nums)
}
