package subscriber

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/schemas"
)

// Default stream names, as the publisher provisions them.
const (
	DefaultEventsStream = schemas.EventsStream
	DefaultStateStream  = schemas.StateStream
)

// ErrViewNotReady is returned by WaitApplied while the view has not
// finished bootstrapping and the caller's deadline passes.
var ErrViewNotReady = errors.New("subscriber: state view not ready")

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
	if err := configError(tenantProblems(cfg.Tenants)); err != nil {
		return nil, err
	}
	v := &View{js: js, cfg: cfg, log: cfg.Logger, ready: make(chan struct{}), tenants: map[string]*tenantState{}}
	for _, t := range cfg.Tenants {
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
		origin := schemas.OriginSeq(m.Headers().Get(schemas.SourceHeader))
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

// WaitApplied blocks until the view has applied events-stream sequence seq
// or ctx ends (then it returns ctx's error, or ErrViewNotReady joined with it
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
				return errors.Join(ErrViewNotReady, ctx.Err())
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

// Skipped counts events the view could not use (undecodable or invalid).
func (v *View) Skipped() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.skipped
}
