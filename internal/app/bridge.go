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
	"golang.org/x/time/rate"

	"github.com/cecbridge/cecbridge/configs"
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
}

// tenantRun is everything one tenant runs.
type tenantRun struct {
	name     string
	client   *cec.Client
	sessions []*cec.Session
	covers   []func(int) bool // per session: which agents it may ask about (nil: all)
	poller   *poller.Tenant
}

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
	instance, _ := os.Hostname()
	for _, tc := range cfg.Tenants {
		tr, err := b.newTenant(ctx, tc, instance)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", tc.Name, err)
		}
		b.tenants = append(b.tenants, tr)
	}
	return b, nil
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

func (b *Bridge) newTenant(ctx context.Context, tc configs.Tenant, instance string) (*tenantRun, error) {
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
		// A burst below 1 would refuse every request, silently: the
		// tenant would never poll.
		ccfg.Limiter = rate.NewLimiter(rate.Limit(tc.Budget), max(tc.Burst, 1))
	}
	client, err := cec.New(ccfg)
	if err != nil {
		return nil, err
	}
	tr := &tenantRun{name: tc.Name, client: client}
	var monitors []poller.Monitor
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
		monitors = append(monitors, poller.Monitor{Source: s, Covers: covers})
	}
	tr.poller, err = poller.New(poller.Config{
		Tenant:            tc.Name,
		Instance:          instance,
		Directory:         poller.FabricDirectory{Client: client},
		Monitors:          monitors,
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
		if err := tr.poller.Restore(subject, l.Event); err != nil {
			log.Warn("stored event not restored", "subject", subject, "err", err)
			continue
		}
		restored++
	}
	log.Info("state rebuilt from the stream", "subjects", restored)
	return tr, nil
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
		// Off the publishing loop, which must not wait for the poller.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := tr.poller.Resync(ctx, subject, func(ctx context.Context) (*schemas.Event, error) {
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

// Run polls and publishes until ctx ends, then shuts down in order: pollers
// stop, accepted events are flushed (bounded), gateway sessions sign out,
// the connection drains.
func (b *Bridge) Run(ctx context.Context, extra ...func(ctx context.Context) error) error {
	pubCtx, stopPub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPub()
	sessCtx, stopSessions := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSessions()

	pubDone := make(chan error, 1)
	go func() { pubDone <- b.pub.Run(pubCtx) }()

	sessions, _ := errgroup.WithContext(sessCtx)
	for _, tr := range b.tenants {
		for _, s := range tr.sessions {
			sessions.Go(func() error { return s.Run(sessCtx) })
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, tr := range b.tenants {
		g.Go(func() error { return tr.poller.Run(gctx) })
	}
	for _, fn := range extra {
		g.Go(func() error { return fn(gctx) })
	}
	if b.cfg.HTTP.Listen != "" {
		g.Go(func() error { return serveHTTP(gctx, b.cfg.HTTP.Listen, b, b.metrics, b.log) })
	}
	runErr := g.Wait()

	b.log.Info("stopping: flushing accepted events", "buffered", b.pub.Stats().Buffered)
	fctx, cancel := context.WithTimeout(context.Background(), b.cfg.Publisher.FlushTimeout)
	if err := b.pub.Flush(fctx); err != nil {
		b.log.Error("events not flushed before the deadline", "err", err, "stats", fmt.Sprintf("%+v", b.pub.Stats()))
	}
	cancel()
	stopPub()
	<-pubDone
	stopSessions()
	_ = sessions.Wait()
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}
