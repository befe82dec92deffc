package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/cecbridge/cecbridge/schemas"
)

// ErrNotReady is what a call-ID poll fails with when its monitoring session
// is not signed in: the poller does not even ask.
var ErrNotReady = errors.New("poller: monitoring session not signed in")

// Tenant polls one CEC tenant and emits its change events.
type Tenant struct {
	cfg Config
	enc encoder
	log *slog.Logger

	mu         sync.Mutex
	agents     map[int]*agent
	phones     map[string]*phone
	sched      scheduler
	rosterDone bool // a complete roster was applied since start
	phonesDone bool
	sipIP      string
	sipPort    int
	vis        visibility
	visSeq     uint64
	hbSeq      uint64
	lastCalls  time.Time
	lastRoster time.Time
	lastPhones time.Time

	kick    chan struct{}
	started time.Time
	// sleepUntil is when the dispatcher next wakes by itself (zero while it
	// is dispatching); an agent requeued earlier than that must kick it.
	sleepUntil time.Time
	// everReady marks monitors that have been signed in at least once, so
	// that agents are not reported lost while the first sign-in is still
	// under way.
	everReady []atomic.Bool

	emitted  atomic.Uint64
	refused  atomic.Uint64
	pollsOK  atomic.Uint64
	pollsBad atomic.Uint64
}

// New validates cfg and returns a tenant poller. Call Restore for every
// subject the stream already holds before Run.
func New(cfg Config) (*Tenant, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Tenant{
		cfg:       cfg,
		enc:       encoder{source: "/cecbridge/" + cfg.Tenant, term: uuid.NewString()[:8]},
		log:       cfg.Logger.With("component", "poller", "tenant", cfg.Tenant),
		agents:    make(map[int]*agent),
		phones:    make(map[string]*phone),
		sched:     scheduler{idleShare: cfg.IdleShare},
		vis:       newVisibility(),
		kick:      make(chan struct{}, 1),
		everReady: make([]atomic.Bool, len(cfg.Monitors)),
	}, nil
}

// Run polls until ctx ends. It returns nil then; the sink may still hold
// accepted events, which its owner flushes.
func (t *Tenant) Run(ctx context.Context) error {
	t.mu.Lock()
	t.started = time.Now()
	t.mu.Unlock()

	var wg sync.WaitGroup
	work := make(chan *agent)
	for range t.cfg.Concurrency {
		wg.Go(func() {
			for a := range work {
				t.pollCalls(ctx, a)
			}
		})
	}
	loops := []struct {
		interval time.Duration
		fn       func(context.Context) error
	}{
		{t.cfg.RosterInterval, t.pollRoster},
		{t.cfg.PhonesInterval, t.pollPhones},
		{t.cfg.HeartbeatInterval, t.heartbeat},
		{t.cfg.VisibilityFlush, t.flushVisibility},
	}
	for _, l := range loops {
		// A walk of many pages shares the request budget with the call-ID
		// polls, so it gets several intervals, not one request's timeout.
		timeout := max(t.cfg.RequestTimeout, 3*l.interval)
		wg.Go(func() { every(ctx, l.interval, timeout, t.cfg.Jitter, l.fn) })
	}
	t.dispatch(ctx, work)
	close(work)
	wg.Wait()
	return nil
}

// dispatch hands due agents to the workers in scheduler order.
func (t *Tenant) dispatch(ctx context.Context, work chan<- *agent) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		t.mu.Lock()
		a, wake := t.sched.next(now)
		if a != nil {
			a.inFlight = true
			a.due = now // remembered as the dispatch time for fixed-rate rescheduling
			t.sleepUntil = time.Time{}
		} else {
			t.sleepUntil = now.Add(time.Hour)
			if !wake.IsZero() {
				t.sleepUntil = wake
			}
		}
		t.mu.Unlock()
		if a != nil {
			select {
			case work <- a:
				continue
			case <-ctx.Done():
				return
			}
		}
		wait := time.Hour
		if !wake.IsZero() {
			wait = max(time.Until(wake), 0)
		}
		timer.Reset(wait) // since Go 1.23 Reset also discards a stale expiry
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		case <-timer.C:
		}
	}
}

// requeue puts an agent back in its queue and kicks the dispatcher if the
// agent falls due before the dispatcher would wake by itself. Callers hold
// t.mu.
func (t *Tenant) requeue(a *agent) {
	t.sched.push(a)
	if !t.sleepUntil.IsZero() && a.due.Before(t.sleepUntil) {
		t.sleepUntil = a.due
		t.wake()
	}
}

func (t *Tenant) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

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
		err = ErrNotReady
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
		return // shutting down: an interrupted poll says nothing about the agent
	}
	if t.agents[a.workNo] != a || !a.inRoster {
		return // removed from the roster while in flight
	}
	if errors.Is(err, ErrNotReady) && !t.everReady[mon].Load() && now.Sub(t.started) < 2*t.cfg.RequestTimeout {
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
	if a.callsSeq == 0 || a.calls == nil || !slices.Equal(a.calls, ids) {
		if !t.emitCalls(ctx, a, ids, now) {
			outcome = "refused"
		}
	} else {
		a.callsSeen = now
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

var errNoMonitor = errors.New("poller: no monitoring agent covers this agent")

// emitCalls publishes an agent's new call IDs; it reports whether the sink
// accepted the event (if not, the old state stays the baseline).
func (t *Tenant) emitCalls(ctx context.Context, a *agent, ids []string, now time.Time) bool {
	subject := schemas.AgentCallsSubject(t.cfg.Tenant, a.workNo)
	had := a.callsSeq > 0 && a.calls != nil
	var before *schemas.AgentCalls
	if had {
		before = &schemas.AgentCalls{CallIDs: a.calls}
	}
	seq := a.callsSeq + 1
	ch := schemas.Change[schemas.AgentCalls]{
		Op:       op(had, true, a.fromFirstRoster),
		Key:      schemas.Key{Tenant: t.cfg.Tenant, WorkNo: a.workNo},
		Seq:      seq,
		PrevID:   prevID(subject, seq),
		Before:   before,
		After:    &schemas.AgentCalls{CallIDs: ids},
		Detected: detected(a.callsSeen, now),
	}
	if !t.emit(ctx, subject, schemas.TypeAgentCalls, seq, now, ch) {
		return false
	}
	a.calls, a.callsSeq, a.callsSeen = ids, seq, now
	return true
}

// emit encodes and hands one event to the sink. Callers hold t.mu, which
// keeps sequence assignment and hand-over in one order per subject.
func (t *Tenant) emit(ctx context.Context, subject, eventType string, seq uint64, at time.Time, data any) bool {
	rec, err := t.enc.record(subject, eventType, seq, at, data)
	if err == nil {
		err = t.cfg.Sink.Emit(context.WithoutCancel(ctx), rec)
	}
	if err != nil {
		t.refused.Add(1)
		t.log.Warn("event refused; the change will be detected again", "subject", subject, "err", err)
		return false
	}
	t.emitted.Add(1)
	if t.cfg.Observer != nil {
		t.cfg.Observer.ObserveEvent(eventType)
	}
	return true
}

func (t *Tenant) observePoll(kind, outcome string) {
	if t.cfg.Observer != nil {
		t.cfg.Observer.ObservePoll(kind, outcome)
	}
}

// monitorFor picks the first monitor that covers workNo, or -1.
func (t *Tenant) monitorFor(workNo int) int {
	for i, m := range t.cfg.Monitors {
		if m.Covers == nil || m.Covers(workNo) {
			return i
		}
	}
	return -1
}

// track returns the agent for workNo, creating it (due for its first poll
// spread over one interval) if new.
func (t *Tenant) track(workNo int, now time.Time) *agent {
	if a, ok := t.agents[workNo]; ok {
		return a
	}
	a := &agent{workNo: workNo, heapIdx: -1, visible: true, active: true, monitor: t.monitorFor(workNo)}
	a.due = now.Add(time.Duration(float64(t.cfg.CallsInterval) * jitterFraction()))
	t.agents[workNo] = a
	return a
}

// pollRoster applies one complete queryAgentInfo answer.
func (t *Tenant) pollRoster(ctx context.Context) error {
	r, err := t.cfg.Directory.Roster(ctx)
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err() // the term is over: another instance may own the tenant now
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return err
		}
		t.pollsBad.Add(1)
		t.observePoll("roster", "error")
		t.vis.scopeLost(schemas.ScopeSoftphone, now, reason(err), t.rosterRanges)
		return err
	}
	t.pollsOK.Add(1)
	t.observePoll("roster", "ok")
	t.vis.scopeRestored(schemas.ScopeSoftphone, t.rosterRanges)
	t.lastRoster = now
	first := !t.rosterDone
	t.sipIP, t.sipPort = r.SIPServerIP, r.SIPServerPort

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
		if !a.inRoster {
			a.inRoster = true
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
		if a.spSeq == 0 || a.spDeleted || a.softphone != sp {
			t.emitSoftphone(ctx, a, &sp, now)
		} else {
			a.spSeen = now
		}
	}
	for workNo, a := range t.agents {
		if _, ok := seen[workNo]; ok || !a.inRoster && a.spDeleted {
			continue
		}
		// Only a complete, successful roster may remove an agent.
		t.removeAgent(ctx, a, now)
	}
	wasDone := t.rosterDone && t.phonesDone
	t.rosterDone = true
	t.firstViewDone(ctx, wasDone, now)
	t.wake()
	return nil
}

func (t *Tenant) emitSoftphone(ctx context.Context, a *agent, sp *schemas.AgentSoftphone, now time.Time) bool {
	subject := schemas.AgentSoftphoneSubject(t.cfg.Tenant, a.workNo)
	had := a.spSeq > 0 && !a.spDeleted
	var before *schemas.AgentSoftphone
	if had {
		b := a.softphone
		before = &b
	}
	seq := a.spSeq + 1
	ch := schemas.Change[schemas.AgentSoftphone]{
		Op:       op(had, sp != nil, a.fromFirstRoster),
		Key:      schemas.Key{Tenant: t.cfg.Tenant, WorkNo: a.workNo},
		Seq:      seq,
		PrevID:   prevID(subject, seq),
		Before:   before,
		After:    sp,
		Detected: detected(a.spSeen, now),
	}
	if !t.emit(ctx, subject, schemas.TypeAgentSoftphone, seq, now, ch) {
		return false
	}
	a.spSeq, a.spSeen = seq, now
	if sp == nil {
		a.spDeleted, a.softphone = true, schemas.AgentSoftphone{}
	} else {
		a.spDeleted, a.softphone = false, *sp
	}
	return true
}

// removeAgent records that the roster no longer lists an agent: its
// softphone and calls entities are deleted and it is no longer polled. The
// struct stays as a tombstone so that sequences continue if it comes back.
func (t *Tenant) removeAgent(ctx context.Context, a *agent, now time.Time) {
	if a.spSeq > 0 && !a.spDeleted {
		if !t.emitSoftphone(ctx, a, nil, now) {
			return // retried on the next roster
		}
	} else {
		a.spDeleted = true
	}
	if a.callsSeq > 0 && a.calls != nil {
		subject := schemas.AgentCallsSubject(t.cfg.Tenant, a.workNo)
		seq := a.callsSeq + 1
		ch := schemas.Change[schemas.AgentCalls]{
			Op:       schemas.OpDelete,
			Key:      schemas.Key{Tenant: t.cfg.Tenant, WorkNo: a.workNo},
			Seq:      seq,
			PrevID:   prevID(subject, seq),
			Before:   &schemas.AgentCalls{CallIDs: a.calls},
			Detected: detected(a.callsSeen, now),
		}
		if !t.emit(ctx, subject, schemas.TypeAgentCalls, seq, now, ch) {
			return
		}
		a.callsSeq, a.calls, a.callsSeen = seq, nil, now
	}
	a.inRoster = false
	a.fromFirstRoster = false
	t.sched.remove(a)
	t.vis.forget(a)
}

// pollPhones applies one complete queryPhone walk.
func (t *Tenant) pollPhones(ctx context.Context) error {
	list, err := t.cfg.Directory.Phones(ctx)
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err() // the term is over: another instance may own the tenant now
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return err
		}
		t.pollsBad.Add(1)
		t.observePoll("phones", "error")
		t.vis.scopeLost(schemas.ScopePhones, now, reason(err), nil)
		return err
	}
	t.pollsOK.Add(1)
	t.observePoll("phones", "ok")
	t.vis.scopeRestored(schemas.ScopePhones, nil)
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
			ph = &phone{}
			t.phones[p.PhoneNum] = ph
		}
		if ph.seq == 0 || ph.deleted || ph.state != st {
			t.emitPhone(ctx, p.PhoneNum, ph, &st, now, first)
		} else {
			ph.seen = now
		}
	}
	for num, ph := range t.phones {
		if _, ok := seen[num]; ok || ph.deleted {
			continue
		}
		t.emitPhone(ctx, num, ph, nil, now, false)
	}
	wasDone := t.rosterDone && t.phonesDone
	t.phonesDone = true
	t.firstViewDone(ctx, wasDone, now)
	return nil
}

func (t *Tenant) emitPhone(ctx context.Context, num string, ph *phone, st *schemas.PhoneState, now time.Time, first bool) {
	subject := schemas.PhoneStateSubject(t.cfg.Tenant, num)
	had := ph.seq > 0 && !ph.deleted
	var before *schemas.PhoneState
	if had {
		b := ph.state
		before = &b
	}
	seq := ph.seq + 1
	ch := schemas.Change[schemas.PhoneState]{
		Op:       op(had, st != nil, first),
		Key:      schemas.Key{Tenant: t.cfg.Tenant, PhoneNum: num},
		Seq:      seq,
		PrevID:   prevID(subject, seq),
		Before:   before,
		After:    st,
		Detected: detected(ph.seen, now),
	}
	if !t.emit(ctx, subject, schemas.TypePhoneState, seq, now, ch) {
		return
	}
	ph.seq, ph.seen = seq, now
	if st == nil {
		ph.deleted, ph.state = true, schemas.PhoneState{}
	} else {
		ph.deleted, ph.state = false, *st
	}
}

// heartbeat emits the bridge's liveness event.
func (t *Tenant) heartbeat(ctx context.Context) error {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !(t.rosterDone && t.phonesDone) && now.Sub(t.started) < 2*t.cfg.RequestTimeout {
		// The first roster and phone walks are under way; the heartbeat
		// that follows them says what is visible (see firstViewDone).
		return nil
	}
	t.heartbeatLocked(ctx, now)
	return nil
}

// firstViewDone sends a heartbeat as soon as the first roster and phone
// walks have both completed, so that readers learn the visibility picture
// at once rather than an interval later. Callers hold t.mu.
func (t *Tenant) firstViewDone(ctx context.Context, wasDone bool, now time.Time) {
	if !wasDone && t.rosterDone && t.phonesDone {
		t.heartbeatLocked(ctx, now)
	}
}

func (t *Tenant) heartbeatLocked(ctx context.Context, now time.Time) {
	tracked := t.trackedLocked()
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
		PhonesTracked:  t.phonesLocked(),
		EventsEmitted:  t.emitted.Load(),
		LastCallsPoll:  t.lastCalls.UTC(),
		LastRosterPoll: t.lastRoster.UTC(),
		LastPhonesPoll: t.lastPhones.UTC(),
	}
	subject := schemas.BridgeSubject(t.cfg.Tenant, schemas.BridgeHeartbeat)
	hb.Seq = t.hbSeq + 1
	hb.PrevID = prevID(subject, hb.Seq)
	if t.emit(ctx, subject, schemas.TypeBridgeHeartbeat, hb.Seq, now, hb) {
		t.hbSeq = hb.Seq
	}
}

// flushVisibility turns the visibility changes gathered since the last
// flush into events.
func (t *Tenant) flushVisibility(ctx context.Context) error {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	pending := t.vis.drain(t.cfg.Tenant, now)
	subject := schemas.BridgeSubject(t.cfg.Tenant, schemas.BridgeVisibility)
	for i, v := range pending {
		v.Seq = t.visSeq + 1
		v.PrevID = prevID(subject, v.Seq)
		if !t.emit(ctx, subject, schemas.TypeBridgeVisibility, v.Seq, now, v) {
			t.vis.requeue(pending[i:])
			return errors.New("poller: visibility event refused")
		}
		t.visSeq = v.Seq
	}
	return nil
}

func (t *Tenant) trackedLocked() int {
	n := 0
	for _, a := range t.agents {
		if a.inRoster {
			n++
		}
	}
	return n
}

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

func (t *Tenant) phonesLocked() int {
	n := 0
	for _, p := range t.phones {
		if !p.deleted {
			n++
		}
	}
	return n
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
}

// Stats returns the tenant's current figures.
func (t *Tenant) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	tracked := t.trackedLocked()
	return Stats{
		AgentsTracked:  tracked,
		AgentsVisible:  tracked - t.vis.invisibleCount(),
		PhonesTracked:  t.phonesLocked(),
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

// Restore takes over the state a stored event describes: call it for the
// last event of every subject before Run (after a restart; Resync handles a
// subject another writer won while running). Events of other tenants or
// unknown shapes are an error and change nothing.
func (t *Tenant) Restore(subject string, ev schemas.Event) error {
	ps, err := t.ownSubject(subject)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.restoreLocked(subject, ps, ev)
}

// Resync re-reads one subject after another writer won it: load returns
// what the stream holds now (nil if nothing). The poller's lock is held
// throughout, so no event of the subject is emitted from the stale state
// while the publisher re-learns the subject's position.
func (t *Tenant) Resync(ctx context.Context, subject string, load func(ctx context.Context) (*schemas.Event, error)) error {
	ps, err := t.ownSubject(subject)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ev, err := load(ctx)
	if err != nil {
		return fmt.Errorf("poller: resync %s: %w", subject, err)
	}
	if ev == nil {
		t.forgetLocked(ps)
		return nil
	}
	return t.restoreLocked(subject, ps, *ev)
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
	switch {
	case ps.Entity == "agent" && ps.Aspect == "calls":
		if a, ok := t.agents[ps.WorkNo]; ok {
			a.calls, a.callsSeq, a.callsSeen = nil, 0, time.Time{}
		}
	case ps.Entity == "agent" && ps.Aspect == "softphone":
		if a, ok := t.agents[ps.WorkNo]; ok {
			a.softphone, a.spSeq, a.spSeen, a.spDeleted = schemas.AgentSoftphone{}, 0, time.Time{}, false
		}
	case ps.Entity == "phone":
		delete(t.phones, ps.PhoneNum)
	case ps.Aspect == schemas.BridgeVisibility:
		t.visSeq = 0
	case ps.Aspect == schemas.BridgeHeartbeat:
		t.hbSeq = 0
	}
}

func (t *Tenant) restoreLocked(subject string, ps schemas.ParsedSubject, ev schemas.Event) error {
	switch {
	case ps.Entity == "agent" && ps.Aspect == "calls":
		var ch schemas.Change[schemas.AgentCalls]
		if err := decodeData(ev, &ch); err != nil {
			return err
		}
		a := t.restoredAgent(ps.WorkNo)
		a.callsSeq, a.callsSeen = ch.Seq, ch.Detected.ByPoll
		if ch.After != nil {
			a.calls = normaliseCalls(ch.After.CallIDs)
			if len(a.calls) > 0 {
				a.lastInCall = ch.Detected.ByPoll
			}
		} else {
			a.calls = nil
		}
		a.active = len(a.calls) > 0 || time.Since(a.lastInCall) < t.cfg.ActiveWindow
	case ps.Entity == "agent" && ps.Aspect == "softphone":
		var ch schemas.Change[schemas.AgentSoftphone]
		if err := decodeData(ev, &ch); err != nil {
			return err
		}
		a := t.restoredAgent(ps.WorkNo)
		a.spSeq, a.spSeen = ch.Seq, ch.Detected.ByPoll
		if ch.After != nil {
			a.softphone, a.spDeleted = *ch.After, false
		} else {
			a.softphone, a.spDeleted = schemas.AgentSoftphone{}, true
		}
	case ps.Entity == "phone" && ps.Aspect == "state":
		var ch schemas.Change[schemas.PhoneState]
		if err := decodeData(ev, &ch); err != nil {
			return err
		}
		ph := t.phones[ps.PhoneNum]
		if ph == nil {
			ph = &phone{}
			t.phones[ps.PhoneNum] = ph
		}
		ph.seq, ph.seen = ch.Seq, ch.Detected.ByPoll
		if ch.After != nil {
			ph.state, ph.deleted = *ch.After, false
		} else {
			ph.state, ph.deleted = schemas.PhoneState{}, true
		}
	case ps.Entity == "bridge" && ps.Aspect == schemas.BridgeVisibility:
		var v schemas.Visibility
		if err := decodeData(ev, &v); err != nil {
			return err
		}
		t.visSeq = v.Seq
	case ps.Entity == "bridge" && ps.Aspect == schemas.BridgeHeartbeat:
		var hb schemas.Heartbeat
		if err := decodeData(ev, &hb); err != nil {
			return err
		}
		t.hbSeq = hb.Seq
	default:
		return fmt.Errorf("%w: %q", schemas.ErrBadSubject, subject)
	}
	return nil
}

// restoredAgent returns the agent for workNo, creating a tombstone-like
// entry that the first roster confirms (or removes).
func (t *Tenant) restoredAgent(workNo int) *agent {
	a, ok := t.agents[workNo]
	if !ok {
		a = &agent{workNo: workNo, heapIdx: -1, visible: true, monitor: t.monitorFor(workNo)}
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
