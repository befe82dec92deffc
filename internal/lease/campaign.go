package lease

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

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
