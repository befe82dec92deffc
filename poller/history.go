package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/cecbridge/cecbridge/schemas"
)

// History is the stream as one term's writer sees it. The poller rebuilds
// its state from it when a term starts and re-reads single subjects from it
// after another writer's event turned up on them.
type History interface {
	// Load returns the last stored event of every subject under filter and
	// makes the writer expect exactly those.
	Load(ctx context.Context, filter string) (map[string]schemas.Stored, error)
	// Latest re-reads one subject; nil when the stream holds nothing on it.
	Latest(ctx context.Context, subject string) (*schemas.Stored, error)
	// Prime says where subject stands now (its events-stream sequence, 0
	// for none); records emitted afterwards are checked against it.
	Prime(subject string, seq uint64)
}

// Rebuilt says whether the term has taken over the stream's state and
// polls; until then nothing is polled (the sessions sign in meanwhile).
func (t *Tenant) Rebuilt() bool { return t.rebuilt.Load() }

// rebuildPatiently rebuilds until it succeeds or ctx ends. A stream that
// cannot be read (NATS away, a leader election) is waited for inside the
// term: giving the term up would release a lease that is still ours and
// cost a campaign once NATS is back.
func (t *Tenant) rebuildPatiently(ctx context.Context) {
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(100*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second), backoff.WithMaxElapsedTime(0))
	for {
		// Each attempt has a deadline of its own: a read that hangs (a
		// stream between leaders) is retried, and said so, like one that
		// fails.
		actx, cancel := context.WithTimeout(ctx, rebuildAttempt)
		err := t.rebuild(actx)
		cancel()
		if err == nil {
			t.rebuilt.Store(true)
			return
		}
		if ctx.Err() != nil {
			return // the term ended before it began: nothing failed
		}
		wait := bo.NextBackOff()
		t.log.Warn("state not rebuilt from the stream yet; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// rebuildAttempt bounds one attempt to read the tenant's state: generous,
// since a tenant of 60,000 agents has some 300,000 subjects to read.
const rebuildAttempt = 2 * time.Minute

// rebuild takes over the state the stream holds for the tenant, so that
// the term emits only real changes.
func (t *Tenant) rebuild(ctx context.Context) error {
	latest, err := t.cfg.History.Load(ctx, schemas.TenantEvents(t.cfg.Tenant))
	if err != nil {
		return fmt.Errorf("poller: rebuild state from the stream: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	restored := 0
	for subject, l := range latest {
		if err := t.restoreLocked(subject, l.Event); err != nil {
			t.log.Warn("stored event not restored", "subject", subject, "err", err)
			continue
		}
		restored++
	}
	t.log.Info("state rebuilt from the stream", "subjects", restored)
	return nil
}

// Conflicted tells the poller that another writer's event is the last one
// on subject: the poller stops emitting on it, re-reads it and continues
// from what the stream holds. It does not block: subjects are gathered and
// re-read together by the tenant's resync loop.
func (t *Tenant) Conflicted(subject string) {
	if _, err := t.ownSubject(subject); err != nil {
		t.log.Error("conflict reported on a subject of another tenant", "subject", subject)
		return
	}
	t.resync.add(subject)
}

// resyncLoop re-reads the subjects other writers changed, one batch at a
// time, without holding the poller's lock while it reads.
func (t *Tenant) resyncLoop(ctx context.Context) {
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(100*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second), backoff.WithMaxElapsedTime(0))
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.resync.kick:
		}
		for subjects := t.resync.list(); len(subjects) > 0; subjects = t.resync.list() {
			failed := 0
			for _, subject := range subjects {
				if err := t.resyncOne(ctx, subject); err != nil {
					if ctx.Err() != nil {
						return
					}
					failed++
					t.log.Warn("subject not re-read after a conflict; retrying", "subject", subject, "err", err)
				}
			}
			if failed == 0 {
				bo.Reset()
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(bo.NextBackOff()):
			}
		}
	}
}

func (t *Tenant) resyncOne(ctx context.Context, subject string) error {
	rctx, cancel := context.WithTimeout(ctx, t.cfg.RequestTimeout)
	l, err := t.cfg.History.Latest(rctx, subject)
	cancel()
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var seq uint64
	if l == nil {
		ps, _ := t.ownSubject(subject)
		t.forgetLocked(ps)
	} else {
		if err := t.restoreLocked(subject, l.Event); err != nil {
			return err
		}
		seq = l.StreamSeq
	}
	t.cfg.History.Prime(subject, seq)
	t.resync.done(subject)
	t.log.Warn("another writer published on this subject; continuing from its state", "subject", subject)
	return nil
}

// resyncQueue holds the subjects waiting to be re-read. Its own lock lets
// the publisher report a conflict without waiting for the poller's.
type resyncQueue struct {
	mu       sync.Mutex
	subjects map[string]bool
	kick     chan struct{}
}

func newResyncQueue() resyncQueue {
	return resyncQueue{subjects: make(map[string]bool), kick: make(chan struct{}, 1)}
}

func (q *resyncQueue) add(subject string) {
	q.mu.Lock()
	q.subjects[subject] = true
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// pending reports whether subject waits to be re-read.
func (q *resyncQueue) pending(subject string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.subjects) > 0 && q.subjects[subject]
}

func (q *resyncQueue) list() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]string, 0, len(q.subjects))
	for s := range q.subjects {
		out = append(out, s)
	}
	return out
}

func (q *resyncQueue) done(subject string) {
	q.mu.Lock()
	delete(q.subjects, subject)
	q.mu.Unlock()
}

// ownSubject parses an event subject of this tenant.
func (t *Tenant) ownSubject(subject string) (schemas.ParsedSubject, error) {
	ps, err := schemas.ParseSubject(subject)
	if err != nil {
		return ps, err
	}
	if ps.Tenant != t.cfg.Tenant {
		return ps, fmt.Errorf("poller: subject %q belongs to another tenant", subject)
	}
	return ps, nil
}

// forgetLocked drops what the poller knows of an entity the stream no
// longer holds, so its next observation starts a new history.
func (t *Tenant) forgetLocked(ps schemas.ParsedSubject) {
	switch ps.Kind {
	case schemas.KindAgentCalls:
		if a, ok := t.agents[ps.WorkNo]; ok {
			a.calls = aspect[schemas.AgentCalls]{}
		}
	case schemas.KindAgentSoftphone:
		if a, ok := t.agents[ps.WorkNo]; ok {
			a.softphone = aspect[schemas.AgentSoftphone]{}
		}
	case schemas.KindAgentCallsV2:
		if a, ok := t.agents[ps.WorkNo]; ok && a.sweep != nil {
			a.sweep.callsV2 = aspect[schemas.AgentCallsV2]{}
		}
	case schemas.KindAgentState:
		if a, ok := t.agents[ps.WorkNo]; ok && a.sweep != nil {
			a.sweep.state = aspect[schemas.AgentState]{}
		}
	case schemas.KindPhoneState:
		if ph, ok := t.phones[ps.PhoneNum]; ok {
			t.phoneChanged(ph.state.present, false)
			delete(t.phones, ps.PhoneNum)
		}
	case schemas.KindBridgeVisibility:
		t.visSeq = 0
	case schemas.KindBridgeHeartbeat:
		t.hbSeq = 0
	case schemas.KindBridgeStatesVisibility:
		t.statesVisSeq = 0
	}
}

// restoreLocked takes over the state a stored event describes. Events of
// other tenants or of unknown shapes are an error and change nothing.
func (t *Tenant) restoreLocked(subject string, ev schemas.Event) error {
	ps, err := t.ownSubject(subject)
	if err != nil {
		return err
	}
	switch ps.Kind {
	case schemas.KindAgentCalls:
		var ch schemas.Change[schemas.AgentCalls]
		if err := decodeData(ev, &ch); err != nil {
			return err
		}
		a := t.restoredAgent(ps.WorkNo)
		if ch.After != nil {
			ch.After.CallIDs = normaliseCalls(ch.After.CallIDs)
		}
		switch {
		case ch.After != nil && len(ch.After.CallIDs) > 0:
			a.lastInCall = ch.Detected.ByPoll
		case ch.Before != nil && len(ch.Before.CallIDs) > 0:
			// The call ended between after_poll and by_poll: the agent was
			// in a call until then, and stays active for ActiveWindow.
			a.lastInCall = ch.Detected.ByPoll
			if ch.Detected.AfterPoll != nil {
				a.lastInCall = *ch.Detected.AfterPoll
			}
		}
		a.calls.set(ch.Seq, ch.Detected.ByPoll, ch.After)
		a.active = len(a.calls.state.CallIDs) > 0 || time.Since(a.lastInCall) < t.cfg.ActiveWindow
	case schemas.KindAgentSoftphone:
		var ch schemas.Change[schemas.AgentSoftphone]
		if err := decodeData(ev, &ch); err != nil {
			return err
		}
		t.restoredAgent(ps.WorkNo).softphone.set(ch.Seq, ch.Detected.ByPoll, ch.After)
	case schemas.KindAgentCallsV2:
		var ch schemas.Change[schemas.AgentCallsV2]
		if err := decodeData(ev, &ch); err != nil {
			return err
		}
		t.restoredAgent(ps.WorkNo).sweepFacts().callsV2.set(ch.Seq, ch.Detected.ByPoll, ch.After)
	case schemas.KindAgentState:
		var ch schemas.Change[schemas.AgentState]
		if err := decodeData(ev, &ch); err != nil {
			return err
		}
		t.restoredAgent(ps.WorkNo).sweepFacts().state.set(ch.Seq, ch.Detected.ByPoll, ch.After)
	case schemas.KindPhoneState:
		var ch schemas.Change[schemas.PhoneState]
		if err := decodeData(ev, &ch); err != nil {
			return err
		}
		ph := t.phones[ps.PhoneNum]
		if ph == nil {
			ph = &phone{}
			t.phones[ps.PhoneNum] = ph
		}
		had := ph.state.present
		ph.state.set(ch.Seq, ch.Detected.ByPoll, ch.After)
		t.phoneChanged(had, ph.state.present)
	case schemas.KindBridgeVisibility:
		var v schemas.Visibility
		if err := decodeData(ev, &v); err != nil {
			return err
		}
		t.visSeq = v.Seq
	case schemas.KindBridgeHeartbeat:
		var hb schemas.Heartbeat
		if err := decodeData(ev, &hb); err != nil {
			return err
		}
		t.hbSeq = hb.Seq
	case schemas.KindBridgeStatesVisibility:
		var sv schemas.StatesVisibility
		if err := decodeData(ev, &sv); err != nil {
			return err
		}
		t.statesVisSeq = sv.Seq
	default:
		return fmt.Errorf("%w: %q", schemas.ErrBadSubject, subject)
	}
	return nil
}

// restoredAgent returns the agent for workNo, creating a tombstone-like
// entry that the first rosters confirm (or remove).
func (t *Tenant) restoredAgent(workNo int) *agent {
	a, ok := t.agents[workNo]
	if !ok {
		a = &agent{workNo: workNo, heapIdx: -1, visible: true, monitor: MonitorFor(t.cfg.Monitors, workNo)}
		t.agents[workNo] = a
	}
	return a
}

func decodeData(ev schemas.Event, v any) error {
	if err := json.Unmarshal(ev.Data, v); err != nil {
		return fmt.Errorf("poller: decode stored %s event %s: %w", ev.Type, ev.ID, err)
	}
	return nil
}
