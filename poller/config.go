package poller

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// ErrConfig is wrapped by every configuration error of this package.
var ErrConfig = errors.New("poller: invalid configuration")

// Monitor is one gateway session the tenant polls call IDs through, with
// the work numbers it may ask about (the vendor answers only for agents in the
// monitoring agent's own VDN).
type Monitor struct {
	Source CallSource
	// Covers reports whether this monitor may ask about workNo; nil covers
	// every agent.
	Covers func(workNo int) bool
}

// MonitorFor is the index of the first of monitors that covers workNo, or
// -1 when none does. It is the one routing rule: the poller and a live
// lookup ask about an agent through the same session.
func MonitorFor(monitors []Monitor, workNo int) int {
	for i, m := range monitors {
		if m.Covers == nil || m.Covers(workNo) {
			return i
		}
	}
	return -1
}

// Config configures one tenant's poller. Zero durations take the defaults
// documented per field.
type Config struct {
	Tenant    string
	Instance  string // names this bridge process in heartbeats
	Directory Directory
	Monitors  []Monitor
	Sink      Sink
	// History is where the term rebuilds its state from and re-reads a
	// subject after a conflict (the term's publisher writer).
	History  History
	Observer Observer
	Logger   *slog.Logger

	CallsInterval     time.Duration // active agents; default 1s
	IdleInterval      time.Duration // other agents; default 15s
	ActiveWindow      time.Duration // how long an agent stays active after its last call; default 10m
	RosterInterval    time.Duration // default 30s
	PhonesInterval    time.Duration // default 30s
	HeartbeatInterval time.Duration // default 30s
	VisibilityFlush   time.Duration // how often visibility changes are batched into one event; default 1s
	RequestTimeout    time.Duration // per poll; default 10s
	Jitter            float64       // fraction of an interval, default 0.1
	Concurrency       int           // call-ID workers; default 64
	// IdleShare is the share of dispatches idle agents get while active
	// agents are overdue; default 0.1.
	IdleShare float64

	// CMS, if set, sweeps the whole roster every SweepInterval (see
	// sweep.go); agents a sweep cannot cover are polled one by one.
	CMS              CMS
	SweepInterval    time.Duration // default 1s
	SweepConcurrency int           // chunk requests in flight per sweep; default 8
	// CMSLag is how far CMS data is known to trail the gateway: a sweep's
	// observation describes the moment it was answered minus CMSLag, and
	// its detected window says so.
	CMSLag time.Duration
	// Confirm asks the gateway (one allcallinfoEx) about a change a sweep
	// found before publishing it.
	Confirm bool
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.CallsInterval, time.Second)
	def(&c.IdleInterval, 15*time.Second)
	def(&c.ActiveWindow, 10*time.Minute)
	def(&c.RosterInterval, 30*time.Second)
	def(&c.PhonesInterval, 30*time.Second)
	def(&c.HeartbeatInterval, 30*time.Second)
	def(&c.VisibilityFlush, time.Second)
	def(&c.RequestTimeout, 10*time.Second)
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	if c.Concurrency == 0 {
		c.Concurrency = 64
	}
	if c.IdleShare == 0 {
		c.IdleShare = 0.1
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Second
	}
	if c.SweepConcurrency == 0 {
		c.SweepConcurrency = 8
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Instance == "" {
		c.Instance = "cecbridge"
	}
}

func (c *Config) validate() error {
	var errs []error
	if err := schemas.ValidTenant(c.Tenant); err != nil {
		errs = append(errs, err)
	}
	if c.Directory == nil {
		errs = append(errs, errors.New("directory is required"))
	}
	if c.Sink == nil {
		errs = append(errs, errors.New("sink is required"))
	}
	if c.History == nil {
		errs = append(errs, errors.New("history is required"))
	}
	if len(c.Monitors) == 0 {
		errs = append(errs, errors.New("at least one monitor is required"))
	}
	for i, m := range c.Monitors {
		if m.Source == nil {
			errs = append(errs, fmt.Errorf("monitor %d has no call source", i))
		}
	}
	for name, d := range map[string]time.Duration{
		"calls interval": c.CallsInterval, "idle interval": c.IdleInterval, "active window": c.ActiveWindow,
		"roster interval": c.RosterInterval, "phones interval": c.PhonesInterval,
		"heartbeat interval": c.HeartbeatInterval, "visibility flush": c.VisibilityFlush,
		"request timeout": c.RequestTimeout, "sweep interval": c.SweepInterval, "cms lag": c.CMSLag,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", name, d))
		}
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("jitter must be in [0,1), got %v", c.Jitter))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency must be positive, got %d", c.Concurrency))
	}
	if c.SweepConcurrency < 0 {
		errs = append(errs, fmt.Errorf("sweep concurrency must be positive, got %d", c.SweepConcurrency))
	}
	if c.IdleShare < 0 || c.IdleShare > 1 {
		errs = append(errs, fmt.Errorf("idle share must be in [0,1], got %v", c.IdleShare))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
