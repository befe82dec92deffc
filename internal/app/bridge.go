package app

import (
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/diagnose"
	"github.com/cecbridge/cecbridge/internal/lease"
	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/subscriber"
)

// Bridge is one cecbridge: vendor clients and sessions, pollers, the
// publisher and (optionally) the lookup service, over one NATS connection
// that its caller opened and closes.
type Bridge struct {
	cfg      configs.Bridge
	log      *slog.Logger
	nc       *nats.Conn
	js       jetstream.JetStream
	pub      *publisher.Publisher
	tenants  []*tenantRun
	elector  *lease.Elector // nil when leases are disabled
	assign   *assigner      // spreads the tenants over the instances; nil without leases
	instance string
	started  time.Time
	metrics  *metrics
	diag     *diagnose.Diagnoser // vendor answers that contradict the configuration
	detect   *detection          // how late changes can have been seen
	streamCheck

	// provisioned is set once the streams are laid out; until then
	// /readyz says why not (provisionErr).
	provisioned  atomic.Bool
	provisionErr atomic.Pointer[string]
	httpAddr     atomic.Pointer[string]             // set once the HTTP listener is open
	lookups      atomic.Pointer[subscriber.Service] // the lookup service while it runs
}

// tenantRun is everything one tenant runs. The client and sessions live as
// long as the bridge; a poller is built for each term in which this
// instance holds the tenant's lease (or once, without leases).
type tenantRun struct {
	name     string
	cfg      configs.Tenant
	client   *cec.Client
	sessions []*cec.Session
	monitors []poller.Monitor
	cms      *cec.CMS                      // the CC-CMS client, nil without a cms block
	current  atomic.Pointer[poller.Tenant] // the running term's poller; nil on a standby
	term     atomic.Pointer[lease.Term]    // the running term
}

// poller returns the poller of the current term, or nil when this instance
// does not poll the tenant right now.
func (tr *tenantRun) poller() *poller.Tenant { return tr.current.Load() }

// mayForce says whether the tenant's sessions may push another sign-in of
// the monitoring agent out: only while the term's lease is confirmed.
func (tr *tenantRun) mayForce() bool {
	t := tr.term.Load()
	return t != nil && t.Valid()
}

// New builds every component without touching the network: the streams
// are provisioned, the leases campaigned for and the tenants polled by
// Serve. The caller owns nc (and drains it after Serve returns).
func New(cfg configs.Bridge, nc *nats.Conn, log *slog.Logger) (*Bridge, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b := &Bridge{cfg: cfg, log: log, nc: nc, js: js, started: time.Now(), metrics: newMetrics(), diag: diagnose.New(log)}
	b.detect = newDetection(b.metrics.reg)
	if b.pub, err = publisher.New(js, b.publisherConfig()); err != nil {
		return nil, err
	}
	b.instance = cfg.Instance
	if b.instance == "" {
		if b.instance, err = os.Hostname(); err != nil || b.instance == "" {
			b.instance = "cecbridge"
		}
	}
	if !cfg.Lease.Disabled {
		if b.elector, err = lease.New(js, lease.Config{
			Bucket: cfg.Lease.Bucket, TTL: cfg.Lease.TTL, Holder: b.instance, Logger: log,
			Replicas: cfg.Lease.Replicas, Placement: placement(cfg.Streams.Placement),
			UpdateExisting: cfg.Streams.UpdateExisting,
		}); err != nil {
			return nil, err
		}
	}
	if b.elector != nil {
		weights := make(map[string]int, len(cfg.Tenants))
		for _, tc := range cfg.Tenants {
			weights[tc.Name] = max(tc.Weight, 1)
		}
		b.assign = newAssigner(b.elector, b.instance, weights, log)
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

func (b *Bridge) publisherConfig() publisher.Config {
	cfg := b.cfg
	return publisher.Config{
		EventsStream:    cfg.Streams.Events,
		StateStream:     cfg.Streams.State,
		Replicas:        cfg.Streams.Replicas,
		Placement:       placement(cfg.Streams.Placement),
		MaxAge:          cfg.Streams.MaxAge,
		MaxBytes:        cfg.Streams.MaxBytes,
		DuplicateWindow: cfg.Streams.DuplicateWindow,
		UpdateExisting:  cfg.Streams.UpdateExisting,
		MaxInFlight:     cfg.Publisher.MaxInFlight,
		AckTimeout:      cfg.Publisher.AckTimeout,
		BufferEvents:    cfg.Publisher.BufferEvents,
		SpoolDir:        cfg.Publisher.SpoolDir,
		SpoolMaxBytes:   cfg.Publisher.SpoolMaxBytes,
		Observer:        publishObserver{b.metrics},
		Logger:          b.log,
	}
}

// placement is the JetStream form of the configured placement; nil when
// none is configured, so that JetStream chooses.
func placement(p configs.Placement) *jetstream.Placement {
	if p.Cluster == "" && len(p.Tags) == 0 {
		return nil
	}
	return &jetstream.Placement{Cluster: p.Cluster, Tags: p.Tags}
}

func (b *Bridge) newTenant(tc configs.Tenant) (*tenantRun, error) {
	log := b.log.With("tenant", tc.Name)
	ccfg := ClientConfig(tc)
	ccfg.Observer = b.diag.Tenant(tc.Name, upstreamObserver{b.metrics, tc.Name})
	ccfg.Logger = log
	if tc.TLS.InsecureSkipVerify {
		log.Warn("vendor TLS certificate verification is OFF (tls.insecure_skip_verify)")
	}
	client, err := cec.New(ccfg)
	if err != nil {
		return nil, err
	}
	tr := &tenantRun{name: tc.Name, cfg: tc, client: client}
	if tr.cms, err = NewCMS(client, tc.CMS); err != nil {
		return nil, err
	}
	for _, m := range tc.Monitors {
		covers, err := m.Covers()
		if err != nil {
			return nil, err
		}
		s := client.NewSession(cec.SessionConfig{
			AgentID:  m.AgentID,
			Password: cec.Secret(m.Password.Reveal()),
			PhoneNum: m.Phone,
			MayForce: tr.mayForce,
			Logger:   log,
		})
		tr.sessions = append(tr.sessions, s)
		tr.monitors = append(tr.monitors, poller.Monitor{Source: s, Covers: covers})
	}
	return tr, nil
}
