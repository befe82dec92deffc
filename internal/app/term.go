package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cecbridge/cecbridge/internal/lease"
	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
)

// pollTenant polls tr for as long as ctx lasts: in every term in which
// this instance holds the tenant's lease, or (leases off) in one term after
// another, retried with backoff when one cannot start.
func (b *Bridge) pollTenant(ctx context.Context, tr *tenantRun) error {
	if b.elector != nil {
		b.assign.wait(ctx)
		return b.elector.Hold(ctx, tenantKeyPrefix+tr.name, func(term *lease.Term) {
			if err := b.term(term, tr); err != nil {
				b.log.Error("tenant term ended with an error", "tenant", tr.name, "err", err)
			}
		}, lease.WithGate(b.assign))
	}
	delay := time.Second
	for ctx.Err() == nil {
		termCtx, end := context.WithCancel(ctx)
		err := b.term(lease.Unleased(termCtx, tr.name), tr)
		end()
		if err == nil || ctx.Err() != nil {
			delay = time.Second
			continue
		}
		b.log.Error("tenant term failed; retrying", "tenant", tr.name, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
	return nil
}

// term polls one tenant for one term. It signs the monitoring sessions in,
// rebuilds the tenant's state from the stream and polls until the term's
// context ends. Then it stops polling, signs the sessions out at once (a
// successor's forcelogin must not find this instance signing in again while
// it flushes), publishes what it can while the lease is still confirmed,
// and fences the rest: when term returns, nothing of this term can reach
// the stream any more, so the next term may rebuild from it.
func (b *Bridge) term(term *lease.Term, tr *tenantRun) error {
	ctx, yield := context.WithCancel(term.Context())
	defer yield()
	if b.assign != nil {
		b.assign.holding(tr.name, true) // a resumed lease was not gated
		defer b.assign.holding(tr.name, false)
	}
	log := b.log.With("tenant", tr.name, "term", term.ID())
	var pl atomic.Pointer[poller.Tenant]
	w := b.pub.NewWriter(publisher.WriterConfig{
		Term: term.ID(),
		Gate: term,
		OnConflict: func(subject string) {
			if p := pl.Load(); p != nil {
				p.Conflicted(subject)
			}
		},
	})
	// After an outage during which the lease key expired, the term goes on
	// only if nobody wrote the tenant's subjects meanwhile.
	term.OnReacquire(func(ctx context.Context) error {
		return w.Unchallenged(ctx, schemas.TenantEvents(tr.name))
	})
	tc := tr.cfg
	pcfg := poller.Config{
		Tenant:            tc.Name,
		Instance:          b.instance,
		Directory:         poller.FabricDirectory{Client: tr.client},
		Monitors:          tr.monitors,
		Sink:              b.detect.sink(tc.Name, w),
		History:           w,
		Observer:          pollObserver{b.metrics, tc.Name},
		Logger:            b.log,
		CallsInterval:     tc.Intervals.Calls,
		IdleInterval:      tc.Intervals.Idle,
		ActiveWindow:      tc.Intervals.ActiveWindow,
		RosterInterval:    tc.Intervals.Roster,
		PhonesInterval:    tc.Intervals.Phones,
		HeartbeatInterval: tc.Intervals.Heartbeat,
		RequestTimeout:    tc.Timeout,
		Concurrency:       tc.Concurrency,
	}
	if tr.cms != nil {
		pcfg.CMS, pcfg.SweepInterval = tr.cms, tc.Intervals.Sweep
		pcfg.SweepConcurrency, pcfg.CMSLag, pcfg.Confirm = tc.CMS.Concurrency, tc.CMS.Lag, tc.CMS.Confirm
	}
	p, err := poller.New(pcfg)
	if err != nil {
		b.endWriter(w, log)
		return err
	}
	pl.Store(p)

	tr.term.Store(term)
	sessCtx, stopSessions := context.WithCancel(context.WithoutCancel(ctx))
	var sessions errgroup.Group
	for _, s := range tr.sessions {
		sessions.Go(func() error { return s.Run(sessCtx) })
	}
	tr.current.Store(p)
	var checks errgroup.Group
	if b.elector != nil {
		checks.Go(func() error { b.checkStray(ctx, w, p, tr.name, log); return nil })
	}
	if b.assign != nil {
		checks.Go(func() error { b.yieldWhenUnfair(ctx, yield, tr.name, log); return nil })
	}
	runErr := p.Run(ctx)
	_ = checks.Wait()
	tr.current.Store(nil)
	stopSessions()
	_ = sessions.Wait()
	tr.term.Store(nil)

	if term.Valid() {
		fctx, cancel := context.WithTimeout(context.Background(), b.cfg.Publisher.FlushTimeout)
		if err := w.Flush(fctx); err != nil {
			log.Warn("term's events not all published before the flush deadline; the rest are dropped", "err", err)
		}
		cancel()
	}
	b.endWriter(w, log)
	if runErr != nil {
		return fmt.Errorf("term %s: %w", term.ID(), runErr)
	}
	return nil
}

// checkStray looks, once the predecessor's lease has certainly run out
// (one TTL after this term began), for subjects someone else wrote after
// this term loaded them: a predecessor that was paused, or hung, while
// this instance took over. The poller re-reads them as after a conflict,
// so a late write of a term that is over cannot stand as current state
// unnoticed.
func (b *Bridge) checkStray(ctx context.Context, w *publisher.Writer, p *poller.Tenant, tenant string, log *slog.Logger) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(b.elector.TTL() + time.Second):
	}
	// Stray compares with what Load read: not before the state is rebuilt,
	// and again until the stream answers.
	var stray []string
	for tick := time.NewTicker(time.Second); ; {
		if p.Rebuilt() {
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			var err error
			stray, err = w.Stray(sctx, schemas.TenantEvents(tenant))
			cancel()
			if err == nil {
				tick.Stop()
				break
			}
			if ctx.Err() == nil {
				log.Warn("could not check for writes of an earlier term yet; retrying", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			tick.Stop()
			return
		case <-tick.C:
		}
	}
	if len(stray) > 0 {
		log.Warn("an earlier term wrote after this one took over; re-reading its subjects", "subjects", len(stray))
	}
	for _, subject := range stray {
		p.Conflicted(subject)
	}
}

// yieldWhenUnfair ends the term (cleanly: sign out, flush, fence, release)
// when this instance holds more than its share and the assigner picks this
// tenant to go to an instance with room.
func (b *Bridge) yieldWhenUnfair(ctx context.Context, yield context.CancelFunc, tenant string, log *slog.Logger) {
	tick := time.NewTicker(b.elector.TTL() / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if b.assign.shouldYield(tenant) {
			b.assign.moves.Add(1)
			log.Info("handing the tenant over: this instance holds more than its share")
			yield()
			return
		}
	}
}

// endWriter fences a term's writer. Records in flight get their answers
// within the ack timeout, so End is bounded by it.
func (b *Bridge) endWriter(w *publisher.Writer, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Publisher.AckTimeout+5*time.Second)
	defer cancel()
	if err := w.End(ctx); err != nil {
		log.Error("term not fenced in time; its last publishes are still unanswered", "err", err)
	}
}
