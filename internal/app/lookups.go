package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/subscriber"
)

// startLookups starts the state view and the lookup service; the returned
// stop undoes both.
func (b *Bridge) startLookups(ctx context.Context) (func(context.Context) error, error) {
	cfg := b.cfg
	names := make([]string, len(cfg.Tenants))
	for i, t := range cfg.Tenants {
		names[i] = t.Name
	}
	view, err := subscriber.NewView(b.js, subscriber.ViewConfig{
		EventsStream: cfg.Streams.Events,
		StateStream:  cfg.Streams.State,
		Tenants:      names,
		Logger:       b.log,
	})
	if err != nil {
		return nil, err
	}
	vctx, cancel := context.WithCancel(ctx)
	viewDone := make(chan struct{})
	go func() {
		defer close(viewDone)
		if err := view.Run(vctx); err != nil && !errors.Is(err, context.Canceled) {
			b.log.Error("state view stopped", "err", err)
		}
	}()
	svc, err := subscriber.NewService(vctx, b.nc, view, liveFetcher{b}, subscriber.Config{
		Version:    Version,
		QueueGroup: cfg.Lookup.QueueGroup,
		Tenants:    names,
		Logger:     b.log,
		Observer:   lookupObserver{b.metrics},
	})
	if err != nil {
		cancel()
		<-viewDone
		return nil, err
	}
	b.log.Info("lookup service up", "subjects", "cec.lookup.<tenant>.>", "queue_group", cfg.Lookup.QueueGroup)
	b.lookups.Store(svc)
	return func(context.Context) error {
		b.lookups.Store(nil)
		err := svc.Stop()
		cancel()
		<-viewDone
		return err
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
	// The gateway answers a monitoring session only about agents of its
	// own VDN: the lookup goes the way the tenant's poller goes.
	i := poller.MonitorFor(tr.monitors, workNo)
	if i < 0 {
		return nil, fmt.Errorf("no monitoring agent covers agent %d", workNo)
	}
	// Someone is waiting for this answer: it goes before the polls.
	return tr.monitors[i].Source.AllCallInfo(cec.WithPriority(ctx), workNo)
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
