package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/subscriber"
)

// Version is the bridge's version, reported by the lookup service.
var Version = "0.1.0"

// Serve runs the bridge and its lookup service over nc until ctx ends, then
// drains nc. extra loops run alongside (dev mode's event counter).
func Serve(ctx context.Context, cfg configs.Bridge, nc *nats.Conn, log *slog.Logger, extra ...func(context.Context) error) error {
	defer drain(nc, log)
	b, err := New(ctx, cfg, nc, log)
	if err != nil {
		return err
	}
	return b.Serve(ctx, extra...)
}

// Serve runs the bridge and, unless disabled, its lookup service until ctx
// ends. Unlike the package-level Serve it leaves the connection open: the
// caller that built the Bridge with New owns it.
func (b *Bridge) Serve(ctx context.Context, extra ...func(context.Context) error) error {
	if !b.cfg.Lookup.Disabled {
		stop, err := b.startLookups(ctx, b.log)
		if err != nil {
			return err
		}
		defer stop()
	}
	return b.Run(ctx, extra...)
}

// startLookups starts the state view and the lookup service.
func (b *Bridge) startLookups(ctx context.Context, log *slog.Logger) (func(), error) {
	cfg := b.cfg
	names := make([]string, len(cfg.Tenants))
	for i, t := range cfg.Tenants {
		names[i] = t.Name
	}
	view, err := subscriber.NewView(b.js, subscriber.ViewConfig{
		EventsStream: cfg.Streams.Events,
		StateStream:  cfg.Streams.State,
		Tenants:      names,
		Logger:       log,
	})
	if err != nil {
		return nil, err
	}
	vctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	viewDone := make(chan struct{})
	go func() {
		defer close(viewDone)
		if err := view.Run(vctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("state view stopped", "err", err)
		}
	}()
	svc, err := subscriber.NewService(vctx, b.nc, view, liveFetcher{b}, subscriber.Config{
		Version:    Version,
		QueueGroup: cfg.Lookup.QueueGroup,
		Tenants:    names,
		Logger:     log,
		Observer:   lookupObserver{b.metrics},
	})
	if err != nil {
		cancel()
		<-viewDone
		return nil, err
	}
	log.Info("lookup service up", "subjects", "cec.lookup.<tenant>.>", "queue_group", cfg.Lookup.QueueGroup)
	b.lookups.Store(svc)
	return func() {
		b.lookups.Store(nil)
		if err := svc.Stop(); err != nil {
			log.Warn("lookup service stop", "err", err)
		}
		cancel()
		<-viewDone
	}, nil
}

// liveFetcher answers lookups that must go to the vendor, through the same
// clients (and request budget) as the pollers.
type liveFetcher struct{ b *Bridge }

var (
	errNoTenant = errors.New("no such tenant")
	// errStandby: another instance holds the tenant's lease, and only the
	// holder's gateway sessions are signed in.
	errStandby = errors.New("this instance is a standby for tenant")
)

func (l liveFetcher) tenant(name string) (*tenantRun, error) {
	for _, tr := range l.b.tenants {
		if tr.name == name {
			if tr.poller() == nil {
				return nil, fmt.Errorf("%w: %q", errStandby, name)
			}
			return tr, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", errNoTenant, name)
}

// AgentCalls implements subscriber.LiveFetcher.
func (l liveFetcher) AgentCalls(ctx context.Context, tenant string, workNo int) ([]string, error) {
	tr, err := l.tenant(tenant)
	if err != nil {
		return nil, err
	}
	for i, s := range tr.sessions {
		if tr.covers[i] == nil || tr.covers[i](workNo) {
			// Someone is waiting for this answer: it goes before the polls.
			return s.AllCallInfo(cec.WithPriority(ctx), workNo)
		}
	}
	return nil, fmt.Errorf("no monitoring agent covers agent %d", workNo)
}

// AgentByAccount implements subscriber.LiveFetcher.
func (l liveFetcher) AgentByAccount(ctx context.Context, tenant, account string) (subscriber.Account, error) {
	tr, err := l.tenant(tenant)
	if err != nil {
		return subscriber.Account{}, err
	}
	a, err := tr.client.QueryAgentByAccount(cec.WithPriority(ctx), account)
	if errors.Is(err, cec.ErrNotFound) {
		return subscriber.Account{}, fmt.Errorf("%w: %w", subscriber.ErrNotFound, err)
	}
	if err != nil {
		return subscriber.Account{}, err
	}
	return subscriber.Account{WorkNo: a.WorkNo, AgentType: a.AgentType, AgentStatus: a.AgentStatus}, nil
}

// drain flushes and closes the connection, waiting (bounded) for it to
// close. Draining while reconnecting would drop buffered publishes, so it
// first waits a little for the connection to come back.
func drain(nc *nats.Conn, log *slog.Logger) {
	deadline := time.Now().Add(5 * time.Second)
	for nc.IsReconnecting() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
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
