package subscriber

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"golang.org/x/sync/singleflight"

	"github.com/cecbridge/cecbridge/schemas"
)

// ErrNotFound is what a LiveFetcher wraps when the vendor says the entity
// does not exist; the service answers it with schemas.CodeNotFound.
var ErrNotFound = errors.New("subscriber: not found")

// Account is an agent as queryAgentInfoByAccount describes it.
type Account struct {
	WorkNo      int
	AgentType   int
	AgentStatus string
}

// LiveFetcher asks the vendor directly, for lookups the view cannot answer
// (agent.by_account) or answers too stale for the caller (max_age). An
// error wrapping ErrNotFound becomes 404, a deadline 504, anything else 503.
type LiveFetcher interface {
	AgentCalls(ctx context.Context, tenant string, workNo int) ([]string, error)
	AgentByAccount(ctx context.Context, tenant, account string) (Account, error)
}

// Observer receives one measurement per answered lookup request, on every
// path (answered inline, by a worker, refused while saturated, recovered
// from a panic, malformed). endpoint is the endpoint subject (e.g.
// "agent.calls"), code "ok" or the numeric error code sent ("404"), and d
// the time from receipt to reply. It is called on the answering goroutine
// and must not block.
type Observer interface {
	ObserveLookup(tenant, endpoint, code string, d time.Duration)
}

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

// call is one request being answered. It is owned by one goroutine at a
// time (the endpoint callback, then possibly a worker), so answered needs
// no lock.
type call struct {
	req      micro.Request
	tenant   string
	endpoint string
	start    time.Time
	answered bool
	// async marks a request answered from a worker, after the endpoint's
	// callback returned: micro's Request is not safe to touch then (its
	// handler reads the error it records), so errors go out directly.
	async bool
}

// runFunc answers one parsed request. inline is true on the endpoint's
// callback goroutine: then it must not block and returns errWouldBlock
// instead, and the request is retried on a worker.
type runFunc func(ctx context.Context, inline bool) (any, error)

var (
	errWouldBlock = errors.New("subscriber: would block")
	errPanicked   = errors.New("subscriber: handler panicked")
)

// lookupError is an answer with a code from the documented set.
type lookupError struct {
	code int
	desc string
}

func (e *lookupError) Error() string { return "subscriber: " + strconv.Itoa(e.code) + " " + e.desc }

func fail(code int, desc string) error { return &lookupError{code: code, desc: desc} }

// NewService registers the lookup endpoints of every configured tenant on nc
// and starts the worker pool. ctx bounds live vendor calls made on behalf of
// requests; cancel it or call Stop to end the service. live may be nil:
// requests that need it are then answered 503.
func NewService(ctx context.Context, nc *nats.Conn, view *View, live LiveFetcher, cfg Config) (*Service, error) {
	if nc == nil || view == nil {
		return nil, errors.New("subscriber: nil connection or view")
	}
	cfg.setDefaults()
	if len(cfg.Tenants) == 0 {
		return nil, errors.New("subscriber: no tenants configured")
	}
	for _, t := range cfg.Tenants {
		if err := schemas.ValidTenant(t); err != nil {
			return nil, fmt.Errorf("subscriber: %w", err)
		}
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

// recoverReq turns a panic while answering c into a counted 500, unless
// the answer had already been sent (a panicking Observer).
func (s *Service) recoverReq(c *call) {
	if r := recover(); r != nil {
		s.panics.Add(1)
		s.log.Error("lookup handler panicked", "subject", c.req.Subject(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		s.reply(c, nil, errPanicked)
	}
}

// guard runs a live fetch, turning its panic into errPanicked so that every
// single-flight waiter gets an error instead of a re-panic.
func (s *Service) guard(f func() (any, error)) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
			s.log.Error("live fetcher panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			v, err = nil, errPanicked
		}
	}()
	return f()
}

// reply answers c once, with resp or with err's code, and reports it to
// the Observer. A second reply for the same request is dropped.
func (s *Service) reply(c *call, resp any, err error) {
	if c.answered {
		return
	}
	req := c.req
	if err == nil {
		bp := bufPool.Get().(*[]byte)
		var b []byte
		if b, err = encodeAnswer((*bp)[:0], resp); err == nil {
			var rerr error
			if c.async {
				rerr = s.nc.Publish(req.Reply(), b)
			} else {
				rerr = req.Respond(b)
			}
			if rerr != nil {
				s.log.Debug("lookup reply failed", "subject", req.Subject(), "err", rerr)
			}
			s.observe(c, "ok")
		}
		if cap(b) <= maxPooled {
			*bp = b[:0]
			bufPool.Put(bp)
		}
		if err == nil {
			return
		}
	}
	code, desc := classify(err)
	if code >= 500 && !errors.Is(err, errPanicked) {
		s.log.Warn("lookup failed", "subject", req.Subject(), "code", code, "err", err)
	}
	var rerr error
	if c.async {
		msg := nats.NewMsg(req.Reply())
		msg.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(code))
		msg.Header.Set(micro.ErrorHeader, desc)
		rerr = s.nc.PublishMsg(msg)
	} else {
		rerr = req.Error(strconv.Itoa(code), desc, nil)
	}
	if rerr != nil {
		s.log.Debug("lookup error reply failed", "subject", req.Subject(), "err", rerr)
	}
	s.observe(c, strconv.Itoa(code))
}

// observe marks c answered and reports it. Marking first means a panicking
// Observer, recovered by recoverReq, neither re-answers nor re-counts.
func (s *Service) observe(c *call, code string) {
	c.answered = true
	if s.cfg.Observer != nil {
		s.cfg.Observer.ObserveLookup(c.tenant, c.endpoint, code, time.Since(c.start))
	}
}

// classify maps an error to a documented code and a fixed description; no
// request data or vendor text reaches the reply.
func classify(err error) (int, string) {
	var le *lookupError
	switch {
	case errors.As(err, &le):
		return le.code, le.desc
	case errors.Is(err, errPanicked):
		return schemas.CodeInternal, "internal error"
	case errors.Is(err, ErrNotFound):
		return schemas.CodeNotFound, "not found"
	case errors.Is(err, context.DeadlineExceeded):
		return schemas.CodeTimeout, "upstream timeout"
	case errors.Is(err, context.Canceled):
		return schemas.CodeUnavailable, "service stopping"
	default:
		return schemas.CodeUnavailable, "upstream unavailable"
	}
}

// awaitSeq makes sure the view is ready and has applied minSeq, waiting at
// most wait when not inline.
func (s *Service) awaitSeq(ctx context.Context, minSeq uint64, wait time.Duration, inline bool) error {
	if s.view.isReady() && (minSeq == 0 || s.view.Applied() >= minSeq) {
		return nil
	}
	if inline {
		return errWouldBlock
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err := s.view.WaitApplied(wctx, minSeq)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotReady):
		return fail(schemas.CodeUnavailable, "state view not ready")
	case ctx.Err() != nil:
		return fail(schemas.CodeUnavailable, "service stopping")
	default:
		return fail(schemas.CodeTimeout, "min_seq not reached within wait")
	}
}

type liveCallsResult struct {
	ids []string
	at  time.Time
}

// fetchCalls asks the vendor for an agent's calls, one call per agent at a
// time however many requests want it.
func (s *Service) fetchCalls(ctx context.Context, tenant string, workNo int) (liveCallsResult, error) {
	if s.live == nil {
		return liveCallsResult{}, fail(schemas.CodeUnavailable, "live lookups not configured")
	}
	key := "calls\x00" + tenant + "\x00" + strconv.Itoa(workNo)
	ch := s.sf.DoChan(key, func() (any, error) {
		// The fetch runs on behalf of every waiter, so it is bounded by the
		// service's lifetime and LiveTimeout, not by one request.
		fctx, cancel := context.WithTimeout(s.ctx, s.cfg.LiveTimeout)
		defer cancel()
		return s.guard(func() (any, error) {
			s.liveCalls.Add(1)
			ids, err := s.live.AgentCalls(fctx, tenant, workNo)
			if err != nil {
				return nil, fmt.Errorf("subscriber: live calls: %w", err)
			}
			return liveCallsResult{ids: ids, at: time.Now().UTC()}, nil
		})
	})
	s.liveWaiting.Add(1)
	defer s.liveWaiting.Add(-1)
	return awaitFlight[liveCallsResult](ctx, ch, s.cfg.LiveTimeout)
}

func (s *Service) fetchAccount(ctx context.Context, tenant, account string) (accountEntry, error) {
	if s.live == nil {
		return accountEntry{}, fail(schemas.CodeUnavailable, "live lookups not configured")
	}
	key := "acct\x00" + tenant + "\x00" + account
	ch := s.sf.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(s.ctx, s.cfg.LiveTimeout)
		defer cancel()
		return s.guard(func() (any, error) {
			s.liveCalls.Add(1)
			acc, err := s.live.AgentByAccount(fctx, tenant, account)
			if err != nil {
				return nil, fmt.Errorf("subscriber: live account: %w", err)
			}
			e := accountEntry{acc: acc, at: time.Now().UTC()}
			s.accounts.put(tenant, account, e)
			return e, nil
		})
	})
	s.liveWaiting.Add(1)
	defer s.liveWaiting.Add(-1)
	return awaitFlight[accountEntry](ctx, ch, s.cfg.LiveTimeout)
}

func awaitFlight[T any](ctx context.Context, ch <-chan singleflight.Result, limit time.Duration) (T, error) {
	var zero T
	t := time.NewTimer(limit + time.Second) // the flight itself ends by LiveTimeout
	defer t.Stop()
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		return zero, fail(schemas.CodeUnavailable, "service stopping")
	case <-t.C:
		return zero, fail(schemas.CodeTimeout, "upstream timeout")
	}
}

// accountCache keeps agent.by_account answers for ttl.
type accountCache struct {
	mu   sync.Mutex
	ttl  time.Duration
	size int
	m    map[string]accountEntry
}

type accountEntry struct {
	acc Account
	at  time.Time
}

func (c *accountCache) get(tenant, account string, maxAge time.Duration) (accountEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[tenant+"\x00"+account]
	if !ok || time.Since(e.at) > min(c.ttl, maxAge) {
		return accountEntry{}, false
	}
	return e, true
}

func (c *accountCache) put(tenant, account string, e accountEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.size {
		for k, old := range c.m {
			if time.Since(old.at) > c.ttl {
				delete(c.m, k)
			}
		}
		// Still full: drop arbitrary entries; the cache only spares the vendor.
		for k := range c.m {
			if len(c.m) < c.size {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[tenant+"\x00"+account] = e
}
