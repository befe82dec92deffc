package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrConfig is wrapped by every configuration error of this package.
var ErrConfig = errors.New("lease: invalid configuration")

// Config configures an election.
type Config struct {
	Bucket string        // KV bucket, created if missing; default "cecbridge_leases"
	TTL    time.Duration // how long a key lives without renewal; default 15s
	// Campaign is how often a candidate tries to take a free lease; default
	// TTL/3.
	Campaign time.Duration
	// Holder names this instance and is stored as the key's value. Keep it
	// stable across restarts (a configured name, the host name): a
	// restarted instance then resumes its own leases at once instead of
	// waiting for them to expire.
	Holder string
	Logger *slog.Logger

	// Replicas and Placement of the bucket's stream (default 1, anywhere).
	// An existing bucket that differs is reported, and brought to them
	// only with UpdateExisting (the streams' update_existing).
	Replicas       int
	Placement      *jetstream.Placement
	UpdateExisting bool
}

func (c *Config) setDefaults() {
	if c.Bucket == "" {
		c.Bucket = "cecbridge_leases"
	}
	if c.TTL == 0 {
		c.TTL = 15 * time.Second
	}
	if c.Campaign == 0 {
		c.Campaign = c.TTL / 3
	}
	if c.Holder == "" {
		c.Holder = "cecbridge"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.TTL < time.Second {
		errs = append(errs, fmt.Errorf("ttl %s is shorter than 1s", c.TTL))
	}
	if c.Campaign <= 0 {
		errs = append(errs, fmt.Errorf("campaign interval %s must be positive", c.Campaign))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas %d not in 1..5", c.Replicas))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Elector runs elections in one bucket.
type Elector struct {
	js  jetstream.JetStream
	cfg Config
	log *slog.Logger

	mu  sync.Mutex
	kv  jetstream.KeyValue
	ttl time.Duration // the bucket's TTL once known: it decides when keys expire
}

// New validates cfg. It does no I/O: the bucket is opened (or created) by
// Hold, which retries while NATS is unreachable.
func New(js jetstream.JetStream, cfg Config) (*Elector, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Elector{js: js, cfg: cfg, log: cfg.Logger.With("component", "lease")}, nil
}

// bucket opens the bucket, creating it if missing. An existing bucket is
// used as it is: its TTL, not ours, decides when a key expires, so a
// differing one is reported and then trusted.
func (e *Elector) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kv != nil {
		return e.kv, nil
	}
	kv, err := e.js.KeyValue(ctx, e.cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = e.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      e.cfg.Bucket,
			Description: "cecbridge poller leases: one holder per tenant",
			TTL:         e.cfg.TTL,
			History:     1,
			Replicas:    e.cfg.Replicas,
			Placement:   e.cfg.Placement,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = e.js.KeyValue(ctx, e.cfg.Bucket) // another instance was first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lease: bucket %s: %w", e.cfg.Bucket, err)
	}
	if kv, err = e.matchStorage(ctx, kv); err != nil {
		return nil, err
	}
	status, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("lease: bucket %s: %w", e.cfg.Bucket, err)
	}
	e.ttl = e.cfg.TTL
	if ttl := status.TTL(); ttl != e.cfg.TTL {
		if ttl >= time.Second {
			e.ttl = ttl
		}
		e.log.Warn("lease bucket TTL differs from lease.ttl; the bucket's applies",
			"bucket", e.cfg.Bucket, "bucket_ttl", ttl, "lease_ttl", e.cfg.TTL)
	}
	e.kv = kv
	return kv, nil
}

// matchStorage compares an existing bucket's replicas and placement with
// the configuration: a bucket left at R1 when the streams moved to three
// servers would lose every lease with its one server. It reports the
// difference, and applies the configuration with UpdateExisting.
func (e *Elector) matchStorage(ctx context.Context, kv jetstream.KeyValue) (jetstream.KeyValue, error) {
	status, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("lease: bucket %s: %w", e.cfg.Bucket, err)
	}
	bs, ok := status.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return kv, nil
	}
	live := bs.Config()
	replicas := max(live.Replicas, 1) != max(e.cfg.Replicas, 1)
	placement := e.cfg.Placement != nil && !samePlacement(live.Placement, e.cfg.Placement)
	if !replicas && !placement {
		return kv, nil
	}
	if !e.cfg.UpdateExisting {
		e.log.Warn("lease bucket's storage differs from the configuration; left as it is (streams.update_existing: true applies it)",
			"bucket", e.cfg.Bucket, "replicas", live.Replicas, "wanted_replicas", e.cfg.Replicas,
			"placement_differs", placement)
		return kv, nil
	}
	// JetStream scales and moves a stream in separate updates, the move
	// once the scale is done.
	steps := []jetstream.KeyValueConfig{live, live}
	steps[0].Replicas = e.cfg.Replicas
	steps[1].Replicas, steps[1].Placement = e.cfg.Replicas, e.cfg.Placement
	if !placement {
		steps = steps[:1]
	} else if !replicas {
		steps = steps[1:]
	}
	for _, step := range steps {
		for {
			kv, err = e.js.UpdateKeyValue(ctx, step)
			var apiErr *jetstream.APIError
			if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeReconfiguring || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
		if err != nil {
			return nil, fmt.Errorf("lease: update bucket %s to the configured replicas and placement: %w", e.cfg.Bucket, err)
		}
	}
	e.log.Warn("lease bucket updated to the configuration", "bucket", e.cfg.Bucket, "replicas", e.cfg.Replicas)
	return kv, nil
}

// errCodeReconfiguring: a scale or move of the stream is still in progress.
const errCodeReconfiguring jetstream.ErrorCode = 10226

// samePlacement compares two placements, tags in any order.
func samePlacement(a, b *jetstream.Placement) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Cluster == b.Cluster && slices.Equal(slices.Sorted(slices.Values(a.Tags)), slices.Sorted(slices.Values(b.Tags)))
}

// TTL is the lease term in force (the bucket's, once Hold has opened it).
func (e *Elector) TTL() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ttl > 0 {
		return e.ttl
	}
	return e.cfg.TTL
}

// margin is how long before a key could expire on the server the holder
// stops acting: renewals are timed from before the request was sent, so
// the margin only has to cover clock rate differences and the time between
// a validity check and the write it allows.
func (e *Elector) margin() time.Duration { return e.TTL() / 5 }

// Hold campaigns for key until ctx ends. Each time it wins, lead runs with
// the new term; when the term is over (its context ends) lead must return,
// and Hold campaigns again. It returns nil when ctx ends.
//
// The first time Hold finds the key held under this instance's own name
// (an earlier run of this instance that died without releasing it), it
// takes the key over at once rather than waiting for it to expire.
func (e *Elector) Hold(ctx context.Context, key string, lead func(*Term), opts ...HoldOption) error {
	log := e.log.With("lease", key)
	c := campaign{e: e, key: key, log: log, mayResume: true}
	for _, o := range opts {
		o(&c)
	}
	// A campaign goes again as soon as NATS is back, not a campaign
	// interval later: a restart or an outage should cost no more than it
	// must.
	reconnected := e.js.Conn().StatusChanged(nats.CONNECTED)
	defer e.js.Conn().RemoveStatusListener(reconnected)
	for {
		rev, sent, ok := c.attempt(ctx)
		if ok {
			last, held := e.hold(ctx, key, rev, sent, log, lead)
			if held {
				// Ended by us (shutdown, or lead gave up), not by a lost
				// renewal: hand the lease on now rather than after the TTL.
				e.release(key, last)
			}
			c.holder = ""
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := c.e.cfg.Campaign
		wait += time.Duration(rand.Float64() * 0.2 * float64(wait))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		case <-reconnected:
		}
	}
}

// HoldOption adjusts a Hold.
type HoldOption func(*campaign)

// Gate decides whether a campaign may take a free key. Take is asked
// with how long this campaign has seen the key free; when it says yes,
// Taken follows with whether the key was won, so that a gate can count a
// yes as held at once (several campaigns asking together must not all
// pass on the same spare room).
type Gate interface {
	Take(key string, freeFor time.Duration) bool
	Taken(key string, won bool)
}

// WithGate makes Hold take a free key only when gate says so. Resuming a
// key this instance's earlier run left behind is not gated.
func WithGate(gate Gate) HoldOption {
	return func(c *campaign) { c.gate = gate }
}

// campaign is one Hold's memory between attempts.
type campaign struct {
	e         *Elector
	key       string
	log       *slog.Logger
	gate      Gate
	freeSince time.Time // when this campaign first saw the key free, zero while held
	mayResume bool      // the first look may resume a key left by this instance's earlier run
	holder    string    // the other holder last seen, to log changes only
	lastErr   string    // the last failure logged
	outage    bool      // the last attempt could not reach NATS
}

// attempt tries once to take the key; it returns the revision written and
// when the write was sent.
func (c *campaign) attempt(ctx context.Context) (uint64, time.Time, bool) {
	e := c.e
	kv, err := e.bucket(ctx)
	if err != nil {
		c.failed(ctx, err)
		return 0, time.Time{}, false
	}
	entry, err := kv.Get(ctx, c.key)
	resume := c.mayResume
	if err == nil || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		c.mayResume = false // the first look that got an answer
	}
	switch {
	case err == nil && string(entry.Value()) == e.cfg.Holder && resume:
		sent := time.Now()
		rev, err := kv.Update(ctx, c.key, []byte(e.cfg.Holder), entry.Revision())
		if err != nil {
			c.failed(ctx, err)
			return 0, time.Time{}, false
		}
		c.log.Info("lease resumed from an earlier run of this instance", "holder", e.cfg.Holder)
		c.outage, c.lastErr = false, ""
		return rev, sent, true
	case err == nil:
		h := string(entry.Value())
		if h == e.cfg.Holder {
			c.log.Error("lease held under this instance's own name by another process: give every instance its own name (instance)", "holder", h)
		} else if h != c.holder {
			c.log.Info("lease held by another instance; standing by", "holder", h)
		}
		c.holder, c.outage, c.lastErr, c.freeSince = h, false, "", time.Time{}
		return 0, time.Time{}, false
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		if c.outage && c.holder != "" && c.holder != e.cfg.Holder {
			// NATS is back after an outage during which the key expired.
			// The holder seen before the outage kept polling through it
			// and is reclaiming the key now with its buffer; give it one
			// round.
			c.outage = false
			c.log.Info("lease free after an outage; leaving its last holder a moment to reclaim it", "holder", c.holder)
			return 0, time.Time{}, false
		}
		c.outage = false
		if c.freeSince.IsZero() {
			c.freeSince = time.Now()
		}
		if c.gate != nil {
			if !c.gate.Take(c.key, time.Since(c.freeSince)) {
				return 0, time.Time{}, false
			}
			won := false
			defer func() { c.gate.Taken(c.key, won) }()
			rev, sent, ok := c.create(ctx, kv)
			won = ok
			return rev, sent, ok
		}
	default:
		c.failed(ctx, err)
		return 0, time.Time{}, false
	}
	return c.create(ctx, kv)
}

// create takes the free key.
func (c *campaign) create(ctx context.Context, kv jetstream.KeyValue) (uint64, time.Time, bool) {
	sent := time.Now()
	rev, err := kv.Create(ctx, c.key, []byte(c.e.cfg.Holder))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, time.Time{}, false // another candidate was first
	}
	if err != nil {
		c.failed(ctx, err)
		return 0, time.Time{}, false
	}
	c.lastErr, c.freeSince = "", time.Time{}
	c.log.Info("lease acquired", "holder", c.e.cfg.Holder)
	return rev, sent, true
}

func (c *campaign) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	c.outage = true
	if msg := err.Error(); msg != c.lastErr {
		c.lastErr = msg
		c.log.Warn("lease campaign failed; retrying", "err", err)
	}
}

// hold runs lead for one term while renewing the key. It returns once lead
// has returned, with the last revision written and whether the key was
// still ours at the end.
func (e *Elector) hold(ctx context.Context, key string, rev uint64, sent time.Time, log *slog.Logger, lead func(*Term)) (uint64, bool) {
	termCtx, end := context.WithCancel(ctx)
	term := newTerm(termCtx, key)
	term.extend(sent.Add(e.TTL() - e.margin()))
	log = log.With("term", term.ID())
	log.Info("lease term started; polling")
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(term)
	}()
	// stop ends the term and waits for lead. A lost key revokes the
	// validity first, so that nothing more is published; a clean stop
	// lets lead publish what it holds while the validity lasts.
	stop := func(lost bool) {
		if lost {
			term.revoke()
		}
		end()
		<-done
		term.revoke()
		log.Info("lease term ended")
	}

	renewEvery := e.TTL() / 3
	retryEvery := max(e.TTL()/15, 100*time.Millisecond)
	timer := time.NewTimer(renewEvery)
	defer timer.Stop()
	failing := ""
	for {
		select {
		case <-done:
			end()
			term.revoke()
			log.Info("lease term ended")
			return rev, true
		case <-ctx.Done():
			stop(false)
			return rev, true
		case <-timer.C:
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, renewEvery)
		next, err := e.kv.Update(rctx, key, []byte(e.cfg.Holder), rev)
		cancel()
		switch {
		case err == nil:
			rev = next
			term.extend(sent.Add(e.TTL() - e.margin()))
			if failing != "" {
				log.Info("lease renewed again; publishing resumes")
				failing = ""
			}
			timer.Reset(renewEvery)
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			// The key is no longer the one we wrote: taken, released by
			// someone, or expired while NATS was away.
			next, sent, outcome := e.reclaim(ctx, key, term, log)
			switch outcome {
			case reclaimed:
				rev = next
				term.extend(sent.Add(e.TTL() - e.margin()))
				failing = ""
				timer.Reset(renewEvery)
			case retryLater:
				timer.Reset(retryEvery)
			default:
				log.Warn("lease lost; stepping down")
				stop(true)
				return rev, false
			}
		default:
			// NATS unreachable or slow: the term goes on (polling and
			// buffering), its validity lapses until a renewal succeeds.
			if ctx.Err() != nil {
				continue
			}
			if msg := err.Error(); msg != failing {
				failing = msg
				log.Warn("lease renewal failing; polling goes on, publishing waits for a renewal", "err", err)
			}
			timer.Reset(retryEvery)
		}
	}
}

type reclaimOutcome int

const (
	lost reclaimOutcome = iota
	reclaimed
	retryLater
)

// reclaim takes the key anew if nobody holds it (it expired while NATS was
// away) and the holder confirms that nobody acted in its place meanwhile.
func (e *Elector) reclaim(ctx context.Context, key string, term *Term, log *slog.Logger) (uint64, time.Time, reclaimOutcome) {
	rctx, cancel := context.WithTimeout(ctx, e.TTL()/3)
	defer cancel()
	entry, err := e.kv.Get(rctx, key)
	switch {
	case err == nil:
		if string(entry.Value()) == e.cfg.Holder {
			log.Error("lease taken under this instance's own name by another process: give every instance its own name (instance)")
		}
		return 0, time.Time{}, lost
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
	default:
		return 0, time.Time{}, retryLater
	}
	check := term.reacquireCheck()
	if check == nil {
		return 0, time.Time{}, lost
	}
	sent := time.Now()
	rev, err := e.kv.Create(rctx, key, []byte(e.cfg.Holder))
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return 0, time.Time{}, lost
	case err != nil:
		return 0, time.Time{}, retryLater
	}
	if err := check(rctx); err != nil {
		log.Warn("lease expired during an outage and someone acted meanwhile; stepping down", "err", err)
		e.release(key, rev)
		return 0, time.Time{}, lost
	}
	log.Info("lease expired during an outage; reclaimed, nobody acted meanwhile")
	return rev, sent, reclaimed
}

// release deletes the key so that a standby takes over at once instead of
// after the TTL, but only if our revision is still the last: a key another
// holder has taken since is not ours to delete.
func (e *Elector) release(key string, rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.kv.Delete(ctx, key, jetstream.LastRevision(rev))
}

// Holder returns the current holder of key, or "" if none.
func (e *Elector) Holder(ctx context.Context, key string) (string, error) {
	kv, err := e.bucket(ctx)
	if err != nil {
		return "", err
	}
	entry, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lease: %w", err)
	}
	return string(entry.Value()), nil
}

// Unleased returns a term that is valid until ctx ends: for running without
// leases, where this instance is the only writer by configuration.
func Unleased(ctx context.Context, key string) *Term {
	t := newTerm(ctx, key)
	t.extend(time.Now().Add(100 * 365 * 24 * time.Hour))
	return t
}
