package subscriber

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"golang.org/x/sync/singleflight"

	"github.com/cecbridge/cecbridge/schemas"
)

// Observer receives one measurement per answered lookup request, on every
// path (answered inline, by a worker, refused while saturated, recovered
// from a panic, malformed). endpoint is the endpoint subject (e.g.
// "agent.calls"), code "ok" or the numeric error code sent ("404"), and d
// the time from receipt to reply. It is called on the answering goroutine
// and must not block.
type Observer interface {
	ObserveLookup(tenant, endpoint, code string, d time.Duration)
}

// ErrConfig is wrapped by every configuration error of this package.
var ErrConfig = errors.New("subscriber: invalid configuration")

// Config configures a Service. Tenants is required; the rest has defaults.
type Config struct {
	Name        string // micro service name; default "cecbridge"
	Version     string // SemVer; default "0.1.0"
	Description string
	QueueGroup  string // default "cecbridge"
	Tenants     []string
	// Workers bounds the goroutines that run requests which may block
	// (min_seq waits, live fetches); default 64. Backlog is how many such
	// requests may queue for a worker before the service answers 503;
	// default 1024.
	Workers int
	Backlog int
	// LiveTimeout bounds one live vendor call; default 5s.
	LiveTimeout time.Duration
	// AccountTTL is how long an agent.by_account answer is reused; default
	// 30s. AccountCacheSize bounds the cache; default 10000 entries.
	AccountTTL       time.Duration
	AccountCacheSize int
	Logger           *slog.Logger
	Observer         Observer // optional
}

func (c *Config) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Name, "cecbridge")
	def(&c.Version, "0.1.0")
	def(&c.Description, "cecbridge lookups: current CEC agent, call and softphone state")
	def(&c.QueueGroup, "cecbridge")
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.Backlog <= 0 {
		c.Backlog = 1024
	}
	if c.LiveTimeout <= 0 {
		c.LiveTimeout = 5 * time.Second
	}
	if c.AccountTTL <= 0 {
		c.AccountTTL = 30 * time.Second
	}
	if c.AccountCacheSize <= 0 {
		c.AccountCacheSize = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// validate reports every problem of a defaulted c at once, wrapping
// ErrConfig.
func (c *Config) validate() error {
	errs := tenantProblems(c.Tenants)
	if len(c.Tenants) == 0 {
		errs = append(errs, errors.New("no tenants configured"))
	}
	return configError(errs)
}

// tenantProblems lists the invalid tenant names.
func tenantProblems(tenants []string) []error {
	var errs []error
	for _, t := range tenants {
		if err := schemas.ValidTenant(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// configError joins configuration problems under ErrConfig; nil if none.
func configError(errs []error) error {
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Service is the lookup micro service. Each endpoint's callback runs on one
// goroutine, so requests that can be answered from the view at once are
// answered there, and any that may block are handed to a bounded worker
// pool.
type Service struct {
	cfg Config
	nc  *nats.Conn // for answers sent after the endpoint callback returned
	// queueMu orders hand-overs to the worker queue against Stop's drain.
	queueMu  sync.Mutex
	stopping bool
	view     *View
	live     LiveFetcher
	log      *slog.Logger
	svc      micro.Service

	ctx    context.Context
	cancel context.CancelFunc
	jobs   chan job
	quit   chan struct{}
	wg     sync.WaitGroup
	stop   sync.Once

	sf       singleflight.Group
	accounts accountCache

	panics      atomic.Uint64
	rejected    atomic.Uint64
	liveCalls   atomic.Uint64
	liveWaiting atomic.Int64
}

// Stats is the service-specific part of $SRV.STATS (each endpoint's "data").
type Stats struct {
	Panics    uint64 `json:"panics"`
	Rejected  uint64 `json:"rejected"`
	LiveCalls uint64 `json:"live_calls"`
	// LiveWaiting is how many requests are waiting for a live fetch now.
	LiveWaiting int64  `json:"live_waiting"`
	StreamSeq   uint64 `json:"stream_seq"`
}

type job struct {
	call *call
	run  runFunc
}

// NewService registers the lookup endpoints of every configured tenant on nc
// and starts the worker pool. ctx bounds live vendor calls made on behalf of
// requests; cancel it or call Stop to end the service. live may be nil:
// requests that need it are then answered 503.
func NewService(ctx context.Context, nc *nats.Conn, view *View, live LiveFetcher, cfg Config) (*Service, error) {
	if nc == nil || view == nil {
		return nil, errors.New("subscriber: nil connection or view")
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, nc: nc, view: view, live: live, log: cfg.Logger,
		jobs: make(chan job, cfg.Backlog), quit: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.accounts = accountCache{ttl: cfg.AccountTTL, size: cfg.AccountCacheSize, m: map[string]accountEntry{}}

	svc, err := micro.AddService(nc, micro.Config{
		Name:         cfg.Name,
		Version:      cfg.Version,
		Description:  cfg.Description,
		QueueGroup:   cfg.QueueGroup,
		StatsHandler: func(*micro.Endpoint) any { return s.Stats() },
		ErrorHandler: func(_ micro.Service, err *micro.NATSError) {
			s.log.Warn("lookup service async error", "subject", err.Subject, "err", err.Description)
		},
	})
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("subscriber: add service: %w", err)
	}
	s.svc = svc
	for _, t := range cfg.Tenants {
		g := svc.AddGroup(schemas.LookupPrefix + "." + t)
		for _, ep := range endpoints {
			md := map[string]string{
				"description":     ep.desc,
				"tenant":          t,
				"request_schema":  schemas.LookupSchemaFile(ep.subject, "request"),
				"response_schema": schemas.LookupSchemaFile(ep.subject, "response"),
			}
			name := t + "-" + strings.ReplaceAll(ep.subject, ".", "_")
			if err := g.AddEndpoint(name, s.handler(t, ep), micro.WithEndpointSubject(ep.subject), micro.WithEndpointMetadata(md)); err != nil {
				_ = svc.Stop()
				s.cancel()
				return nil, fmt.Errorf("subscriber: add endpoint %s: %w", name, err)
			}
		}
	}
	// Return only once the server knows the endpoints, so a caller that
	// starts the service and then sends a request is not told "no responders".
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	defer fcancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		_ = svc.Stop()
		s.cancel()
		return nil, fmt.Errorf("subscriber: flush endpoints: %w", err)
	}
	for range cfg.Workers {
		s.wg.Add(1)
		go s.work()
	}
	return s, nil
}

// Micro returns the underlying micro service (for Info and Stats).
func (s *Service) Micro() micro.Service { return s.svc }

// Stats returns the service's own counters.
func (s *Service) Stats() Stats {
	return Stats{Panics: s.panics.Load(), Rejected: s.rejected.Load(), LiveCalls: s.liveCalls.Load(), LiveWaiting: s.liveWaiting.Load(), StreamSeq: s.view.Applied()}
}

// Panics counts handler panics recovered (and answered 500).
func (s *Service) Panics() uint64 { return s.panics.Load() }

// Stop drains the endpoints (requests already received are answered), ends
// the worker pool, and answers 503 to anything still queued. It is safe to
// call more than once.
func (s *Service) Stop() error {
	var err error
	s.stop.Do(func() {
		s.queueMu.Lock()
		s.stopping = true
		s.queueMu.Unlock()
		err = s.svc.Stop()
		s.cancel()
		close(s.quit)
		s.wg.Wait()
		for {
			select {
			case j := <-s.jobs:
				s.reply(j.call, nil, fail(schemas.CodeUnavailable, "service stopping"))
			default:
				if err != nil {
					err = fmt.Errorf("subscriber: stop: %w", err)
				}
				return
			}
		}
	})
	return err
}

func (s *Service) work() {
	defer s.wg.Done()
	for {
		select {
		case <-s.quit:
			return
		case j := <-s.jobs:
			s.runJob(j)
		}
	}
}

func (s *Service) runJob(j job) {
	defer s.recoverReq(j.call)
	if time.Since(j.call.start) > schemas.MaxWait+time.Second {
		// Waited in the queue longer than any caller waits for an answer.
		s.reply(j.call, nil, fail(schemas.CodeTimeout, "expired while queued"))
		return
	}
	resp, err := j.run(s.ctx, false)
	s.reply(j.call, resp, err)
}

func (s *Service) handler(tenant string, ep endpoint) micro.HandlerFunc {
	return func(req micro.Request) {
		c := &call{req: req, tenant: tenant, endpoint: ep.subject, start: time.Now()}
		defer s.recoverReq(c)
		data := req.Data()
		if len(data) > schemas.MaxLookupPayload {
			s.reply(c, nil, fail(schemas.CodeBadRequest, "request larger than 64 KiB"))
			return
		}
		run, err := ep.parse(s, tenant, data)
		if err != nil {
			s.reply(c, nil, err)
			return
		}
		resp, err := run(s.ctx, true)
		if !errors.Is(err, errWouldBlock) {
			s.reply(c, resp, err)
			return
		}
		// Under the lock Stop takes before draining the queue, so that no
		// job slips in after the drain and goes unanswered.
		s.queueMu.Lock()
		defer s.queueMu.Unlock()
		if s.stopping {
			s.reply(c, nil, fail(schemas.CodeUnavailable, "service stopping"))
			return
		}
		c.async = true
		select {
		case s.jobs <- job{call: c, run: run}:
		default:
			c.async = false
			s.rejected.Add(1)
			s.reply(c, nil, fail(schemas.CodeUnavailable, "lookup service saturated"))
		}
	}
}
