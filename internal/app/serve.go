package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/publisher"
)

// Version is the bridge's version, reported by the lookup service.
var Version = "0.2.0"

// Run is the whole bridge as "cecbridge run" starts it: it connects to
// NATS, serves until ctx ends, and closes the connection it opened.
func Run(ctx context.Context, cfg configs.Bridge, log *slog.Logger, extra ...func(context.Context) error) error {
	nc, err := ConnectNATS(cfg.NATS, log)
	if err != nil {
		return err
	}
	defer Drain(nc, log)
	return Serve(ctx, cfg, nc, log, extra...)
}

// Serve builds a bridge on nc and serves until ctx ends. The caller owns
// nc. extra loops run alongside (dev mode's event counter).
func Serve(ctx context.Context, cfg configs.Bridge, nc *nats.Conn, log *slog.Logger, extra ...func(context.Context) error) error {
	b, err := New(cfg, nc, log)
	if err != nil {
		return err
	}
	return b.Serve(ctx, extra...)
}

// Serve starts the bridge step by step and runs it until ctx ends or a
// step fails for good; then it stops the steps in reverse order under one
// deadline and returns what failed, joined.
//
// The steps, in order:
//  1. the HTTP endpoints, so that /healthz answers at once and /readyz
//     says what is not ready yet;
//  2. the streams, provisioned (waiting for NATS if it is not up; a
//     stream that cannot be made to fit is a permanent error);
//  3. the publisher;
//  4. the lookup service and its state view, unless disabled;
//  5. the tenants: each polled while this instance holds its lease;
//  6. the extra loops.
//
// On the way out the tenants stop first (each term stops polling, signs
// its sessions out, publishes what it can within publisher.flush_timeout
// and fences the rest), then the lookups, then the publisher.
func (b *Bridge) Serve(ctx context.Context, extra ...func(context.Context) error) error {
	lc := &lifecycle{log: b.log}
	// Each step runs on a context detached from ctx: they stop when the
	// lifecycle stops them, in order, not all at once when ctx ends.
	base := context.WithoutCancel(ctx)
	failed := make(chan error, 1)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	runErr := b.start(ctx, base, lc, fail, extra)
	if runErr == nil {
		select {
		case <-ctx.Done():
		case runErr = <-failed:
			b.log.Error("bridge step failed; stopping", "err", runErr)
		}
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), b.cfg.Publisher.FlushTimeout+b.cfg.Publisher.AckTimeout+10*time.Second)
	defer cancel()
	stopErr := lc.stop(stopCtx)
	for _, tr := range b.tenants {
		// Connections a live lookup opened after the sessions stopped would
		// otherwise hold the vendor's server (and our shutdown) open.
		tr.client.CloseIdleConnections()
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return errors.Join(runErr, stopErr)
	}
	return stopErr
}

// start runs the start-up steps; a step that fails for good later reports
// through fail.
func (b *Bridge) start(ctx, base context.Context, lc *lifecycle, fail func(error), extra []func(context.Context) error) error {
	if addr := b.cfg.HTTP.Listen; addr != "" {
		srv, err := b.listenHTTP(addr)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		lc.started("http", srv.stop)
	}
	if err := b.provision(ctx); err != nil {
		return err
	}
	lc.background(base, "publisher", b.pub.Run)
	if !b.cfg.Lookup.Disabled {
		stop, err := b.startLookups(base)
		if err != nil {
			return fmt.Errorf("lookups: %w", err)
		}
		lc.started("lookups", stop)
	}
	if b.assign != nil {
		lc.background(base, "assignment", b.assign.run)
	}
	lc.background(base, "tenants", func(ctx context.Context) error {
		g, gctx := errgroup.WithContext(ctx)
		for _, tr := range b.tenants {
			g.Go(func() error { return b.pollTenant(gctx, tr) })
		}
		return g.Wait()
	})
	for i, fn := range extra {
		lc.background(base, fmt.Sprintf("extra[%d]", i), func(ctx context.Context) error {
			err := fn(ctx)
			if err != nil && ctx.Err() == nil {
				fail(err)
			}
			return err
		})
	}
	return nil
}

// provision lays out the streams, waiting for NATS as long as ctx lasts:
// the bridge starts in any order with its dependencies. A stream it cannot
// work with ends the start at once; one that differs from the
// configuration is reported and used as it is. /readyz reports the last
// reason it could not yet.
func (b *Bridge) provision(ctx context.Context) error {
	delay := 250 * time.Millisecond
	// Try again as soon as NATS is back, whatever the backoff says.
	reconnected := b.nc.StatusChanged(nats.CONNECTED)
	defer b.nc.RemoveStatusListener(reconnected)
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := publisher.Provision(pctx, b.js, b.publisherConfig())
		cancel()
		switch {
		case errors.Is(err, publisher.ErrPermanent):
			return fmt.Errorf("provision streams (not retried): %w", err)
		case errors.Is(err, publisher.ErrDrift):
			b.log.Warn("streams differ from the configuration; left as they are (streams.update_existing: true applies it)", "err", err)
			err = nil
		}
		if err == nil {
			b.provisioned.Store(true)
			b.provisionErr.Store(nil)
			return nil
		}
		msg := err.Error()
		b.provisionErr.Store(&msg)
		if ctx.Err() != nil {
			return fmt.Errorf("provision streams: %w", err)
		}
		b.log.Warn("streams not ready yet; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("provision streams: %w", ctx.Err())
		case <-time.After(delay):
		case <-reconnected:
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// Drain flushes and closes a connection, waiting (bounded) for it to
// close. Draining while reconnecting would drop buffered publishes, so it
// first waits a little for the connection to come back.
func Drain(nc *nats.Conn, log *slog.Logger) {
	if nc.IsReconnecting() {
		back := nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
		if nc.IsReconnecting() {
			select {
			case <-back:
			case <-time.After(5 * time.Second):
			}
		}
		nc.RemoveStatusListener(back)
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		log.Warn("nats drain did not finish in time")
		nc.Close()
	}
}
