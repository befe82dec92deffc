package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/lease"
	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/subscriber"
)

// Bridge is one running cecbridge: vendor clients and sessions, pollers,
// the publisher and (optionally) the lookup service, over one NATS
// connection.
type Bridge struct {
	cfg     configs.Bridge
	log     *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	pub     *publisher.Publisher
	tenants []*tenantRun
	started time.Time
	metrics *metrics
	streamCheck

	httpAddr atomic.Pointer[string]             // set once the HTTP listener is open
	lookups  atomic.Pointer[subscriber.Service] // the lookup service while it runs
	elector  *lease.Elector                     // nil when leases are disabled
	instance string
}

// tenantRun is everything one tenant runs. The client and sessions live as
// long as the bridge; a poller is built for each term in which this
// instance holds the tenant's lease (or once, without leases).
type tenantRun struct {
	name     string
	cfg      configs.Tenant
	client   *cec.Client
	sessions []*cec.Session
	covers   []func(int) bool // per session: which agents it may ask about (nil: all)
	monitors []poller.Monitor
	current  atomic.Pointer[poller.Tenant] // the running term's poller; nil on a standby
}

// poller returns the poller of the current term, or nil when this instance
// does not poll the tenant right now.
func (tr *tenantRun) poller() *poller.Tenant { return tr.current.Load() }

// New provisions the streams and builds every component,
// restoring each tenant's state from the stream. Nothing polls until run.
func New(ctx context.Context, cfg configs.Bridge, nc *nats.Conn, log *slog.Logger) (*Bridge, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b := &Bridge{cfg: cfg, log: log, nc: nc, js: js, started: time.Now(), metrics: newMetrics()}
	pcfg := publisher.Config{
		EventsStream:    cfg.Streams.Events,
		StateStream:     cfg.Streams.State,
		Replicas:        cfg.Streams.Replicas,
		Placement:       placement(cfg.Streams.Placement),
		MaxAge:          cfg.Streams.MaxAge,
		MaxBytes:        cfg.Streams.MaxBytes,
		DuplicateWindow: cfg.Streams.DuplicateWindow,
		MaxInFlight:     cfg.Publisher.MaxInFlight,
		AckTimeout:      cfg.Publisher.AckTimeout,
		BufferEvents:    cfg.Publisher.BufferEvents,
		SpoolDir:        cfg.Publisher.SpoolDir,
		SpoolMaxBytes:   cfg.Publisher.SpoolMaxBytes,
		OnConflict:      b.onConflict,
		Observer:        publishObserver{b.metrics},
		Logger:          log,
	}
	if err := provisionWithRetry(ctx, js, pcfg, log); err != nil {
		return nil, err
	}
	if b.pub, err = publisher.New(js, pcfg); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	b.instance = fmt.Sprintf("%s/%d", host, os.Getpid())
	if !cfg.Lease.Disabled {
		if b.elector, err = lease.New(ctx, js, lease.Config{
			Bucket: cfg.Lease.Bucket, TTL: cfg.Lease.TTL, Holder: b.instance, Logger: log,
			Replicas: cfg.Lease.Replicas, Placement: placement(cfg.Streams.Placement),
		}); err != nil {
			return nil, err
		}
	}
	for _, tc := range cfg.Tenants {
		tr, err := b.newTenant(tc)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", tc.Name, err)
		}
		b.tenants = append(b.tenants, tr)
	}
	return b, nil
}

// placement is the JetStream form of the configured placement; nil when
// none is configured, so that JetStream chooses.
func placement(p configs.Placement) *jetstream.Placement {
	if p.Cluster == "" && len(p.Tags) == 0 {
		return nil
	}
	return &jetstream.Placement{Cluster: p.Cluster, Tags: p.Tags}
}

// provisionWithRetry creates the streams, waiting for NATS if it is not up
// yet: the bridge starts in any order with its dependencies.
func provisionWithRetry(ctx context.Context, js jetstream.JetStream, pcfg publisher.Config, log *slog.Logger) error {
	delay := 250 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := publisher.Provision(pctx, js, pcfg)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("provision streams: %w", err)
		}
		log.Warn("streams not ready yet; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func (b *Bridge) newTenant(tc configs.Tenant) (*tenantRun, error) {
	log := b.log.With("tenant", tc.Name)
	ccfg := cec.Config{
		FabricURL:          tc.FabricURL,
		TokenURL:           tc.TokenURL,
		GatewayURL:         tc.GatewayURL,
		AppKey:             tc.AppKey,
		AppSecret:          cec.Secret(tc.AppSecret.Reveal()),
		TokenLifetime:      tc.TokenLifetime,
		RequestTimeout:     tc.Timeout,
		CAFile:             tc.TLS.CAFile,
		InsecureSkipVerify: tc.TLS.InsecureSkipVerify,
		NoCallCodes:        tc.NoCallCodes,
		Observer:           upstreamObserver{b.metrics, tc.Name},
		Logger:             log,
	}
	if tc.TLS.InsecureSkipVerify {
		log.Warn("vendor TLS certificate verification is OFF (tls.insecure_skip_verify)")
	}
	if tc.Budget > 0 {
		// One budget for every query of the tenant, polls and live lookups
		// alike; NewBudget keeps the burst at 1 or more, since a burst below
		// 1 would refuse every request and the tenant would never poll.
		ccfg.Limiter = cec.NewBudget(tc.Budget, tc.Burst)
	}
	client, err := cec.New(ccfg)
	if err != nil {
		return nil, err
	}
	tr := &tenantRun{name: tc.Name, cfg: tc, client: client}
	for _, m := range tc.Monitors {
		covers, err := m.Covers()
		if err != nil {
			return nil, err
		}
		s := client.NewSession(cec.SessionConfig{
			AgentID:  m.AgentID,
			Password: cec.Secret(m.Password.Reveal()),
			PhoneNum: m.Phone,
			Logger:   log,
		})
		tr.sessions = append(tr.sessions, s)
		tr.covers = append(tr.covers, covers)
		tr.monitors = append(tr.monitors, poller.Monitor{Source: s, Covers: covers})
	}
	return tr, nil
}

// newPoller builds a poller for one term and restores its state from the
// stream, so that it emits only real changes.
func (b *Bridge) newPoller(ctx context.Context, tr *tenantRun) (*poller.Tenant, error) {
	tc := tr.cfg
	log := b.log.With("tenant", tc.Name)
	p, err := poller.New(poller.Config{
		Tenant:            tc.Name,
		Instance:          b.instance,
		Directory:         poller.FabricDirectory{Client: tr.client},
		Monitors:          tr.monitors,
		Sink:              b.pub,
		Observer:          pollObserver{b.metrics, tc.Name},
		Logger:            log,
		CallsInterval:     tc.Intervals.Calls,
		IdleInterval:      tc.Intervals.Idle,
		ActiveWindow:      tc.Intervals.ActiveWindow,
		RosterInterval:    tc.Intervals.Roster,
		PhonesInterval:    tc.Intervals.Phones,
		HeartbeatInterval: tc.Intervals.Heartbeat,
		RequestTimeout:    tc.Timeout,
		Concurrency:       tc.Concurrency,
	})
	if err != nil {
		return nil, err
	}
	latest, err := b.pub.Load(ctx, schemas.TenantEvents(tc.Name))
	if err != nil {
		return nil, fmt.Errorf("rebuild state from the stream: %w", err)
	}
	restored := 0
	for subject, l := range latest {
		if err := p.Restore(subject, l.Event); err != nil {
			log.Warn("stored event not restored", "subject", subject, "err", err)
			continue
		}
		restored++
	}
	log.Info("state rebuilt from the stream", "subjects", restored)
	return p, nil
}

// onConflict runs when another writer's message is the last on a subject
// the bridge tried to publish: the poller of that tenant re-reads the
// subject (the publisher re-learns its position at the same time) and
// continues from what the stream holds instead of forking the history.
func (b *Bridge) onConflict(subject string, _ *publisher.Latest) {
	ps, err := schemas.ParseSubject(subject)
	if err != nil {
		b.log.Error("publish conflict on an unknown subject", "subject", subject)
		return
	}
	for _, tr := range b.tenants {
		if tr.name != ps.Tenant {
			continue
		}
		p := tr.poller()
		if p == nil {
			return // not polling this tenant any more; the next term reloads it
		}
		// Off the publishing loop, which must not wait for the poller.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := p.Resync(ctx, subject, func(ctx context.Context) (*schemas.Event, error) {
				latest, err := b.pub.Load(ctx, subject)
				if err != nil {
					return nil, err
				}
				if l, ok := latest[subject]; ok {
					return &l.Event, nil
				}
				return nil, nil
			})
			if err != nil {
				b.log.Error("conflict not resolved; the subject stays behind until the next conflict", "subject", subject, "err", err)
				return
			}
			b.log.Warn("another writer published on this subject; continuing from its state", "subject", subject)
		}()
	}
}

// Run polls and publishes until ctx ends. Each tenant is polled while
// this instance holds its lease (always, with leases disabled). On the way
// out, pollers stop, accepted events are flushed (bounded), gateway
// sessions sign out, and the publisher stops; the caller drains the
// connection.
func (b *Bridge) Run(ctx context.Context, extra ...func(ctx context.Context) error) error {
	pubCtx, stopPub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPub()
	pubDone := make(chan error, 1)
	go func() { pubDone <- b.pub.Run(pubCtx) }()

	g, gctx := errgroup.WithContext(ctx)
	for _, tr := range b.tenants {
		if b.elector == nil {
			g.Go(func() error { b.termsWithoutLease(gctx, tr); return nil })
			continue
		}
		g.Go(func() error {
			return b.elector.Hold(gctx, "tenant."+tr.name, func(termCtx context.Context) {
				if err := b.term(termCtx, tr); err != nil {
					b.log.Error("tenant term ended with an error", "tenant", tr.name, "err", err)
				}
			})
		})
	}
	for _, fn := range extra {
		g.Go(func() error { return fn(gctx) })
	}
	if b.cfg.HTTP.Listen != "" {
		g.Go(func() error { return serveHTTP(gctx, b.cfg.HTTP.Listen, b, b.metrics, b.log) })
	}
	runErr := g.Wait()

	b.flush()
	stopPub()
	<-pubDone
	for _, tr := range b.tenants {
		// Connections a live lookup opened after the sessions stopped would
		// otherwise hold the vendor's server (and our shutdown) open.
		tr.client.CloseIdleConnections()
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

// termsWithoutLease polls a tenant until ctx ends when leases are off; a
// term that fails to start (the stream unreachable, say) is retried with
// backoff rather than ending the process.
func (b *Bridge) termsWithoutLease(ctx context.Context, tr *tenantRun) {
	delay := time.Second
	for ctx.Err() == nil {
		if err := b.term(ctx, tr); err != nil && ctx.Err() == nil {
			b.log.Error("tenant term failed; retrying", "tenant", tr.name, "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			delay = min(2*delay, 30*time.Second)
			continue
		}
		delay = time.Second
	}
}

// term polls one tenant until ctx ends: it signs the monitoring sessions
// in, rebuilds the tenant's state from the stream and polls. When ctx ends
// it stops polling, signs the sessions out at once (a successor's
// forcelogin must not find this instance signing in again while it
// flushes), then flushes what was accepted.
func (b *Bridge) term(ctx context.Context, tr *tenantRun) error {
	sessCtx, stopSessions := context.WithCancel(context.WithoutCancel(ctx))
	var sessions errgroup.Group
	signOut := func() {
		stopSessions()
		_ = sessions.Wait()
	}
	for _, s := range tr.sessions {
		sessions.Go(func() error { return s.Run(sessCtx) })
	}
	p, err := b.newPoller(ctx, tr)
	if err != nil {
		signOut()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	tr.current.Store(p)
	runErr := p.Run(ctx)
	tr.current.Store(nil)
	signOut()
	b.flush()
	return runErr
}

// flush waits, bounded, until every accepted event is acknowledged.
func (b *Bridge) flush() {
	fctx, cancel := context.WithTimeout(context.Background(), b.cfg.Publisher.FlushTimeout)
	defer cancel()
	if err := b.pub.Flush(fctx); err != nil {
		b.log.Error("events not flushed before the deadline", "err", err, "stats", fmt.Sprintf("%+v", b.pub.Stats()))
	}
}
