package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/schemas"
)

// eventLog collects the bridge's events from the stream.
type eventLog struct {
	mu      sync.Mutex
	events  []observed
	bad     int
	tracked int
	bytes   int
	lost    map[string]int // visibility-lost events per scope
}

func (l *eventLog) add(m jetstream.Msg) {
	var stored time.Time
	if md, err := m.Metadata(); err == nil {
		stored = md.Timestamp
	}
	o, ok, err := decodeEvent(m.Subject(), m.Data(), stored)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil:
		l.bad++
	case ok:
		l.events = append(l.events, o)
		l.bytes += o.Size
	default:
		ps, err := schemas.ParseSubject(m.Subject())
		switch {
		case err != nil:
		case ps.Aspect == schemas.BridgeHeartbeat:
			if hb, err := decodeHeartbeat(m.Data()); err == nil {
				l.tracked = hb.AgentsTracked
			}
		case ps.Aspect == schemas.BridgeVisibility:
			if v, err := decodeVisibility(m.Data()); err == nil && v.State == schemas.VisibilityLost {
				if l.lost == nil {
					l.lost = map[string]int{}
				}
				l.lost[v.Scope] += max(v.Count, 1)
			}
		}
	}
}

func (l *eventLog) snapshot() ([]observed, int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]observed(nil), l.events...), l.tracked, l.bytes
}

func (l *eventLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// follow hands the tenant's events from the events stream to handle, with
// an ordered consumer (it survives server restarts), until ctx ends.
func follow(ctx context.Context, js jetstream.JetStream, stream, tenant string, handle func(jetstream.Msg), opts ...jetstream.PullConsumeOpt) error {
	var s jetstream.Stream
	for {
		var err error
		if s, err = js.Stream(ctx, stream); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("events stream %s: %w", stream, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{schemas.TenantEvents(tenant)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("ordered consumer: %w", err)
	}
	cc, err := c.Consume(handle, opts...)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

// waitQuiet waits until no new event arrived for quiet, or max.
func waitQuiet(ctx context.Context, l *eventLog, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	last, lastChange := l.count(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		if n := l.count(); n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) >= quiet {
			return
		}
	}
}

// servedBridge is a bridge serving in the background as `cecbridge run`
// serves, and the harness reading its tenant's events from the stream.
type servedBridge struct {
	ctx        context.Context // the bridge's: done once it is stopped
	stopServe  context.CancelFunc
	done       chan error // what app.Serve returned, once
	exited     bool       // done was read; err is what it said
	err        error
	elog       eventLog
	stopFollow context.CancelFunc
	followDone chan error
}

func serveBridge(ctx context.Context, cfg configs.Bridge, bnc *nats.Conn, ojs jetstream.JetStream, log *slog.Logger) *servedBridge {
	b := &servedBridge{done: make(chan error, 1), followDone: make(chan error, 1)}
	var fctx context.Context
	b.ctx, b.stopServe = context.WithCancel(ctx)
	fctx, b.stopFollow = context.WithCancel(ctx)
	go func() { b.done <- app.Serve(b.ctx, cfg, bnc, log) }()
	go func() { b.followDone <- follow(fctx, ojs, cfg.Streams.Events, benchTenant, b.elog.add) }()
	return b
}

// stop stops the bridge and waits for it; an error it returns is also
// logged. It returns at once if the bridge had already stopped.
func (b *servedBridge) stop(log *slog.Logger) error {
	b.stopServe()
	if b.exited {
		return b.err
	}
	b.exited, b.err = true, <-b.done
	if b.err != nil {
		log.Warn("bridge stopped with an error", "err", b.err)
	}
	return b.err
}

// watch calls tick every period until end. It returns early with an
// error when the bridge stops by itself, or when ctx ends (having stopped
// the bridge).
func (b *servedBridge) watch(ctx context.Context, log *slog.Logger, every time.Duration, end time.Time, tick func(now time.Time)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = b.stop(log) // logged; interrupted is the error
			return ctx.Err()
		case err := <-b.done:
			b.exited, b.err = true, err
			return fmt.Errorf("bridge stopped early: %w", err)
		case now := <-t.C:
			tick(now)
			if !now.Before(end) {
				return nil
			}
		}
	}
}

// cancel stops serving and reading without waiting (for a defer).
func (b *servedBridge) cancel() {
	b.stopServe()
	b.stopFollow()
}

// finish reads what the stopped bridge flushed on its way out, then stops
// reading.
func (b *servedBridge) finish(ctx context.Context) error {
	waitQuiet(ctx, &b.elog, 500*time.Millisecond, 5*time.Second)
	b.stopFollow()
	return <-b.followDone
}
