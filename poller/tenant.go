package poller

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrMonitorNotSignedIn is what a call-ID poll fails with when the
// monitoring session it would ask through is not signed in: the poller does
// not even ask.
var ErrMonitorNotSignedIn = errors.New("poller: monitoring session not signed in")

var errNoMonitor = errors.New("poller: no monitoring agent covers this agent")

// Tenant polls one CEC tenant for one term and emits its change events.
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
	vis        visibility
	visSeq     uint64
	hbSeq      uint64
	// statesVisSeq is the seq of the last bridge.states_visibility event.
	statesVisSeq uint64
	lastCalls    time.Time
	lastRoster   time.Time
	lastPhones   time.Time

	// term is Run's context: a walk whose own deadline passed is a failed
	// walk, a walk cut short by the term's end says nothing.
	term    context.Context
	kick    chan struct{}
	started time.Time
	// sleepUntil is when the dispatcher next wakes by itself (zero while it
	// is dispatching); an agent requeued earlier than that must kick it.
	sleepUntil time.Time
	// everReady marks monitors that have been signed in at least once, so
	// that agents are not reported lost while the first sign-in is still
	// under way.
	everReady []atomic.Bool

	resync  resyncQueue
	sweepSt sweepStatus
	counts  counts

	rebuilt  atomic.Bool // the stream's state is taken over; polling may begin
	emitted  atomic.Uint64
	refused  atomic.Uint64
	pollsOK  atomic.Uint64
	pollsBad atomic.Uint64
}

// New validates cfg and returns a tenant poller for one term.
func New(cfg Config) (*Tenant, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Tenant{
		cfg:       cfg,
		enc:       encoder{source: "/cecbridge/" + cfg.Tenant},
		log:       cfg.Logger.With("component", "poller", "tenant", cfg.Tenant),
		agents:    make(map[int]*agent),
		phones:    make(map[string]*phone),
		sched:     scheduler{idleShare: cfg.IdleShare},
		vis:       newVisibility(),
		kick:      make(chan struct{}, 1),
		everReady: make([]atomic.Bool, len(cfg.Monitors)),
		resync:    newResyncQueue(),
	}, nil
}

// Run rebuilds the tenant's state from its history (retrying, for as long
// as ctx lasts, while the history cannot be read), then polls until ctx
// ends, and returns nil then; the sink may still hold accepted events,
// which its owner flushes.
func (t *Tenant) Run(ctx context.Context) error {
	t.rebuildPatiently(ctx)
	if ctx.Err() != nil {
		return nil
	}
	t.mu.Lock()
	t.started = time.Now()
	t.term = ctx
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
		wg.Go(func() { every(ctx, afterEnd, l.interval, timeout, t.cfg.Jitter, l.fn) })
	}
	if t.cfg.CMS != nil {
		sweepTimeout := max(t.cfg.RequestTimeout, 3*t.cfg.SweepInterval)
		wg.Go(func() { every(ctx, fromStart, t.cfg.SweepInterval, sweepTimeout, t.cfg.Jitter, t.sweep) })
	}
	wg.Go(func() { t.resyncLoop(ctx) })
	t.dispatch(ctx, work)
	close(work)
	wg.Wait()
	return nil
}

// termOver reports whether the term has ended.
func (t *Tenant) termOver() bool { return t.term != nil && t.term.Err() != nil }

// emit encodes and hands one event to the sink. Callers hold t.mu, which
// keeps sequence assignment and hand-over in one order per subject. A
// subject being re-read after another writer's event is not emitted: the
// change is detected again once it is.
func (t *Tenant) emit(subject, eventType string, seq uint64, at time.Time, data any) bool {
	if t.resync.pending(subject) {
		return false
	}
	rec, err := t.enc.record(subject, eventType, seq, at, data)
	if err == nil {
		err = t.cfg.Sink.Emit(context.Background(), rec)
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

// track returns the agent for workNo, creating it (due for its first poll
// spread over one interval) if new.
func (t *Tenant) track(workNo int, now time.Time) *agent {
	if a, ok := t.agents[workNo]; ok {
		return a
	}
	a := &agent{workNo: workNo, heapIdx: -1, visible: true, active: true, monitor: MonitorFor(t.cfg.Monitors, workNo)}
	a.due = now.Add(time.Duration(float64(t.cfg.CallsInterval) * jitterFraction()))
	t.agents[workNo] = a
	return a
}
