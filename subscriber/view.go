package subscriber

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/schemas"
)

// Default stream names, as the publisher provisions them.
const (
	DefaultEventsStream = "CEC_EVENTS"
	DefaultStateStream  = "CEC_STATE"
)

// ErrNotReady is returned by WaitApplied while the view has not finished
// bootstrapping and the caller's deadline passes.
var ErrNotReady = errors.New("subscriber: state view not ready")

// ViewConfig configures a View.
type ViewConfig struct {
	// EventsStream is the stream holding every event (default CEC_EVENTS).
	EventsStream string
	// StateStream is the last-message-per-subject stream sourced from
	// EventsStream (default CEC_STATE).
	StateStream string
	// Tenants restricts the view to these tenants; empty means all.
	Tenants []string
	// Logger receives decode problems and consumer errors; nil discards.
	Logger *slog.Logger
}

// View is the in-memory current state of every entity, rebuilt from
// CEC_STATE at start and then kept current by following CEC_EVENTS. All
// lookup answers are read from it, so instances that follow the same stream
// answer the same.
type View struct {
	js      jetstream.JetStream
	cfg     ViewConfig
	log     *slog.Logger
	filters []string

	ready     chan struct{}
	readyOnce sync.Once

	mu      sync.RWMutex
	applied uint64                  // last CEC_EVENTS sequence applied
	tenants map[string]*tenantState // by tenant
	waitCh  chan struct{}           // closed (and cleared) on every apply when set
	skipped uint64                  // events that could not be decoded

	// pending is how many messages of the view's subjects the stream held
	// past the last one delivered, when it was delivered: while it is not
	// 0, an apply is on its way and a waiter need not ask the stream.
	pending atomic.Uint64
}

// Visibility scopes as bit flags.
const (
	lostCalls uint8 = 1 << iota
	lostSoftphone
	lostPhones
)

type tenantState struct {
	agents     map[int]*agentState
	agentOrder []int // sorted work numbers ever seen (deleted ones included)
	phones     map[string]*phoneState
	phoneOrder []string // sorted phone numbers ever seen
	lost       uint8    // tenant-wide lost scopes (visibility events without ranges)
}

// agentState keeps both aspects of an agent in one small record. Slices and
// strings are replaced, never mutated, so readers may share them after
// releasing the lock.
type agentState struct {
	calls    []string
	callsSeq uint64
	callsObs int64 // unix nanos of detected.by_poll; 0 = never
	hasCalls bool

	sp    schemas.AgentSoftphone
	spSeq uint64
	spObs int64
	hasSP bool

	lost uint8
}

type phoneState struct {
	st     schemas.PhoneState
	seq    uint64
	obs    int64
	exists bool
}

// NewView returns a view reading through js. Call Run to fill it.
func NewView(js jetstream.JetStream, cfg ViewConfig) (*View, error) {
	if js == nil {
		return nil, errors.New("subscriber: nil JetStream")
	}
	if cfg.EventsStream == "" {
		cfg.EventsStream = DefaultEventsStream
	}
	if cfg.StateStream == "" {
		cfg.StateStream = DefaultStateStream
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	v := &View{js: js, cfg: cfg, log: cfg.Logger, ready: make(chan struct{}), tenants: map[string]*tenantState{}}
	for _, t := range cfg.Tenants {
		if err := schemas.ValidTenant(t); err != nil {
			return nil, fmt.Errorf("subscriber: view: %w", err)
		}
		v.filters = append(v.filters, schemas.TenantEvents(t))
	}
	if len(v.filters) == 0 {
		v.filters = []string{schemas.AllEvents}
	}
	return v, nil
}

// Ready is closed once the view has applied the whole of CEC_STATE.
func (v *View) Ready() <-chan struct{} { return v.ready }

// Applied returns the last CEC_EVENTS sequence the view has applied.
func (v *View) Applied() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.applied
}

// Run bootstraps the view from the state stream, then follows the events
// stream until ctx ends, and returns ctx's error. A bootstrap or follow
// consumer that cannot be created (NATS or the streams not there yet) is
// retried with backoff: applying an event twice is harmless, since events
// not newer than an entity's state are ignored.
func (v *View) Run(ctx context.Context) error {
	delay := 250 * time.Millisecond
	for {
		err := v.runOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v.log.Warn("state view interrupted; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// runOnce bootstraps and follows until ctx ends or a consumer cannot be
// created. The view is ready once it follows the events stream.
func (v *View) runOnce(ctx context.Context) error {
	last, err := v.bootstrap(ctx)
	if err != nil {
		return err
	}
	cons, err := v.js.OrderedConsumer(ctx, v.cfg.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: v.filters,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    last + 1,
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("subscriber: follow %s: %w", v.cfg.EventsStream, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			v.log.Warn("event without metadata", "subject", m.Subject(), "err", err)
			return
		}
		v.pending.Store(md.NumPending)
		v.apply(md.Sequence.Stream, m.Subject(), m.Data())
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		v.log.Warn("events consumer", "err", err)
	}))
	if err != nil {
		return fmt.Errorf("subscriber: follow %s: %w", v.cfg.EventsStream, err)
	}
	v.readyOnce.Do(func() { close(v.ready) })
	<-ctx.Done()
	// nats.go holds an ordered consumer's lock across the create request of
	// a reset, and Stop waits for that lock: after the consumer's server
	// was lost, up to one request timeout (10 s). Stop in the background
	// rather than hold up the shutdown; an event applied meanwhile is
	// harmless.
	go cc.Stop()
	return ctx.Err()
}

// bootstrap applies the last message of every subject in the state stream
// and returns the highest events-stream sequence among them.
func (v *View) bootstrap(ctx context.Context) (uint64, error) {
	cons, err := v.js.OrderedConsumer(ctx, v.cfg.StateStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: v.filters,
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("subscriber: bootstrap from %s: %w", v.cfg.StateStream, err)
	}
	if info := cons.CachedInfo(); info == nil || info.NumPending == 0 {
		return 0, nil
	}
	it, err := cons.Messages()
	if err != nil {
		return 0, fmt.Errorf("subscriber: bootstrap from %s: %w", v.cfg.StateStream, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	var highest uint64
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("subscriber: bootstrap from %s: %w", v.cfg.StateStream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return 0, fmt.Errorf("subscriber: bootstrap metadata: %w", err)
		}
		origin := originSeq(m.Headers().Get(streamSourceHeader))
		if origin > highest {
			highest = origin
		}
		v.apply(origin, m.Subject(), m.Data())
		if md.NumPending == 0 {
			break
		}
	}
	// Several tenants' subjects interleave, so the highest origin seen may
	// exceed the one applied last: the view has seen everything up to it.
	v.mu.Lock()
	if highest > v.applied {
		v.applied = highest
	}
	v.wakeLocked()
	v.mu.Unlock()
	return highest, nil
}

// originSeq takes the events-stream sequence out of a Nats-Stream-Source
// header ("CEC_EVENTS 42 > >"); 0 when absent or malformed.
func originSeq(h string) uint64 {
	f := strings.Fields(h)
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// WaitApplied blocks until the view has applied events-stream sequence seq
// or ctx ends (then it returns ctx's error, or ErrNotReady joined with it
// when the view never got ready). A seq on a subject the view does not
// follow (another tenant's event) is reached once the view has applied
// every message of its own subjects up to it: the stream is asked which of
// those remain (see nextOwn), and the applied sequence moves up to seq.
// Waiters are woken on every apply; nothing polls.
func (v *View) WaitApplied(ctx context.Context, seq uint64) error {
	target := uint64(0) // the next sequence to wait for before asking the stream again
	for {
		v.mu.Lock()
		ready, applied := v.isReady(), v.applied
		if ready && applied >= seq {
			v.mu.Unlock()
			return nil
		}
		if v.waitCh == nil {
			v.waitCh = make(chan struct{})
		}
		ch := v.waitCh
		v.mu.Unlock()
		if ready && applied >= target && v.pending.Load() == 0 {
			next, done, err := v.nextOwn(ctx, applied, seq)
			switch {
			case err != nil:
				// Fall back to waiting for seq itself.
				v.log.Debug("state view: cannot ask the stream what is left before a sequence", "seq", seq, "err", err)
				target = seq
			case done:
				v.reached(seq)
				return nil
			case next == 0:
				target = seq // the stream has not reached seq yet
			default:
				target = next
			}
			continue
		}
		var readyCh <-chan struct{} // nil once ready, so it never fires again
		if !ready {
			readyCh = v.ready
		}
		select {
		case <-ch:
		case <-readyCh:
		case <-ctx.Done():
			if !ready {
				return errors.Join(ErrNotReady, ctx.Err())
			}
			return ctx.Err()
		}
	}
}

// reached records that the view has applied every message of its
// subjects up to seq.
func (v *View) reached(seq uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if seq > v.applied {
		v.applied = seq
		v.wakeLocked()
	}
}

func (v *View) isReady() bool {
	select {
	case <-v.ready:
		return true
	default:
		return false
	}
}

func (v *View) wakeLocked() {
	if v.waitCh != nil {
		close(v.waitCh)
		v.waitCh = nil
	}
}

func (v *View) tenantLocked(t string) *tenantState {
	ts := v.tenants[t]
	if ts == nil {
		ts = &tenantState{agents: map[int]*agentState{}, phones: map[string]*phoneState{}}
		v.tenants[t] = ts
	}
	return ts
}

func (ts *tenantState) agent(workNo int) *agentState {
	a := ts.agents[workNo]
	if a == nil {
		a = &agentState{}
		ts.agents[workNo] = a
		i, _ := slices.BinarySearch(ts.agentOrder, workNo)
		ts.agentOrder = slices.Insert(ts.agentOrder, i, workNo)
	}
	return a
}

func (ts *tenantState) phone(num string) *phoneState {
	p := ts.phones[num]
	if p == nil {
		p = &phoneState{}
		ts.phones[num] = p
		i, _ := slices.BinarySearch(ts.phoneOrder, num)
		ts.phoneOrder = slices.Insert(ts.phoneOrder, i, num)
	}
	return p
}

// apply decodes one event and folds it into the state. Events whose
// per-entity seq is not newer than the state's are ignored, so the overlap
// between bootstrap and follow, or a redelivery, is harmless. The applied
// sequence advances even for events the view does not use.
func (v *View) apply(streamSeq uint64, subject string, data []byte) {
	var ev schemas.Event
	err := json.Unmarshal(data, &ev)
	v.mu.Lock()
	defer v.mu.Unlock()
	if streamSeq > v.applied {
		v.applied = streamSeq
	}
	defer v.wakeLocked()
	if err != nil {
		v.skipped++
		v.log.Warn("undecodable event", "subject", subject, "seq", streamSeq, "err", err)
		return
	}
	switch ev.Type {
	case schemas.TypeAgentCalls:
		var c schemas.Change[schemas.AgentCalls]
		if err = json.Unmarshal(ev.Data, &c); err == nil {
			err = v.applyCalls(&c)
		}
	case schemas.TypeAgentSoftphone:
		var c schemas.Change[schemas.AgentSoftphone]
		if err = json.Unmarshal(ev.Data, &c); err == nil {
			err = v.applySoftphone(&c)
		}
	case schemas.TypePhoneState:
		var c schemas.Change[schemas.PhoneState]
		if err = json.Unmarshal(ev.Data, &c); err == nil {
			err = v.applyPhone(&c)
		}
	case schemas.TypeBridgeVisibility:
		var vis schemas.Visibility
		if err = json.Unmarshal(ev.Data, &vis); err == nil {
			err = v.applyVisibility(&vis)
		}
	case schemas.TypeBridgeHeartbeat:
		var hb schemas.Heartbeat
		if err = json.Unmarshal(ev.Data, &hb); err == nil {
			err = v.applyHeartbeat(&hb)
		}
	}
	if err != nil {
		v.skipped++
		v.log.Warn("unusable event", "subject", subject, "seq", streamSeq, "type", ev.Type, "err", err)
	}
}

func (v *View) wanted(tenant string) error {
	if err := schemas.ValidTenant(tenant); err != nil {
		return err
	}
	if len(v.cfg.Tenants) > 0 && !slices.Contains(v.cfg.Tenants, tenant) {
		return fmt.Errorf("subscriber: tenant %q not followed", tenant)
	}
	return nil
}

func (v *View) applyCalls(c *schemas.Change[schemas.AgentCalls]) error {
	if err := v.wanted(c.Key.Tenant); err != nil {
		return err
	}
	if schemas.ValidWorkNo(c.Key.WorkNo) != nil {
		return fmt.Errorf("subscriber: calls event for work number %d", c.Key.WorkNo)
	}
	a := v.tenantLocked(c.Key.Tenant).agent(c.Key.WorkNo)
	if c.Seq <= a.callsSeq {
		return nil
	}
	a.callsSeq, a.callsObs = c.Seq, c.Detected.ByPoll.UnixNano()
	if c.After == nil {
		a.calls, a.hasCalls = nil, false
		return nil
	}
	a.calls, a.hasCalls = slices.Clip(c.After.CallIDs), true
	return nil
}

func (v *View) applySoftphone(c *schemas.Change[schemas.AgentSoftphone]) error {
	if err := v.wanted(c.Key.Tenant); err != nil {
		return err
	}
	if schemas.ValidWorkNo(c.Key.WorkNo) != nil {
		return fmt.Errorf("subscriber: softphone event for work number %d", c.Key.WorkNo)
	}
	a := v.tenantLocked(c.Key.Tenant).agent(c.Key.WorkNo)
	if c.Seq <= a.spSeq {
		return nil
	}
	a.spSeq, a.spObs = c.Seq, c.Detected.ByPoll.UnixNano()
	if c.After == nil {
		a.sp, a.hasSP = schemas.AgentSoftphone{}, false
		return nil
	}
	a.sp, a.hasSP = *c.After, true
	return nil
}

func (v *View) applyPhone(c *schemas.Change[schemas.PhoneState]) error {
	if err := v.wanted(c.Key.Tenant); err != nil {
		return err
	}
	if c.Key.PhoneNum == "" {
		return errors.New("subscriber: phone event without phone number")
	}
	p := v.tenantLocked(c.Key.Tenant).phone(c.Key.PhoneNum)
	if c.Seq <= p.seq {
		return nil
	}
	p.seq, p.obs = c.Seq, c.Detected.ByPoll.UnixNano()
	if c.After == nil {
		p.st, p.exists = schemas.PhoneState{}, false
		return nil
	}
	p.st, p.exists = *c.After, true
	return nil
}

// applyVisibility marks the listed agents (or, with no ranges, the whole
// tenant scope) lost or visible again. Entities keep their last state.
func (v *View) applyVisibility(vis *schemas.Visibility) error {
	if err := v.wanted(vis.Tenant); err != nil {
		return err
	}
	var bit uint8
	switch vis.Scope {
	case schemas.ScopeCalls:
		bit = lostCalls
	case schemas.ScopeSoftphone:
		bit = lostSoftphone
	case schemas.ScopePhones:
		bit = lostPhones
	default:
		return fmt.Errorf("subscriber: unknown visibility scope %q", vis.Scope)
	}
	lost := vis.State == schemas.VisibilityLost
	if !lost && vis.State != schemas.VisibilityRestored {
		return fmt.Errorf("subscriber: unknown visibility state %q", vis.State)
	}
	ts := v.tenantLocked(vis.Tenant)
	set := func(flags *uint8) {
		if lost {
			*flags |= bit
		} else {
			*flags &^= bit
		}
	}
	if vis.Agents == "" || bit == lostPhones {
		set(&ts.lost)
		if !lost {
			// A tenant-wide restore covers every agent of the scope.
			for _, a := range ts.agents {
				a.lost &^= bit
			}
		}
		return nil
	}
	nums, err := schemas.ParseRanges(vis.Agents)
	if err != nil {
		return fmt.Errorf("subscriber: visibility ranges: %w", err)
	}
	for _, n := range nums {
		if schemas.ValidWorkNo(n) != nil {
			continue
		}
		set(&ts.agent(n).lost)
	}
	return nil
}

// applyHeartbeat takes the whole visibility picture a heartbeat carries:
// the state stream keeps only a tenant's last visibility event, so a view
// that bootstraps late learns the rest from the last heartbeat, and every
// heartbeat corrects any drift.
func (v *View) applyHeartbeat(hb *schemas.Heartbeat) error {
	if err := v.wanted(hb.Tenant); err != nil {
		return err
	}
	nums, err := schemas.ParseRanges(hb.NotVisible)
	if err != nil {
		return fmt.Errorf("subscriber: heartbeat not_visible: %w", err)
	}
	ts := v.tenantLocked(hb.Tenant)
	for _, a := range ts.agents {
		a.lost &^= lostCalls
	}
	for _, n := range nums {
		if schemas.ValidWorkNo(n) == nil {
			ts.agent(n).lost |= lostCalls
		}
	}
	ts.lost &^= lostCalls
	setBit := func(bit uint8, visible bool) {
		if visible {
			ts.lost &^= bit
			for _, a := range ts.agents {
				a.lost &^= bit
			}
		} else {
			ts.lost |= bit
		}
	}
	setBit(lostSoftphone, hb.RosterVisible)
	setBit(lostPhones, hb.PhonesVisible)
	return nil
}

// Skipped counts events the view could not use (undecodable or invalid).
func (v *View) Skipped() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.skipped
}

func nanosTime(n int64) *time.Time {
	if n == 0 {
		return nil
	}
	t := time.Unix(0, n).UTC()
	return &t
}

// streamSourceHeader is set by the server on messages a stream sourced from
// another: "<origin stream> <origin seq> <filter> <transform>".
const streamSourceHeader = "Nats-Stream-Source"
