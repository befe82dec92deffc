package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Config configures an election.
type Config struct {
	Bucket string        // KV bucket, created if missing; default "cecbridge_leases"
	TTL    time.Duration // how long a term lasts without renewal; default 15s
	// Campaign is how often a candidate tries to take a free lease; default
	// TTL/3.
	Campaign time.Duration
	Holder   string // this instance's name, stored as the key's value
	Logger   *slog.Logger

	// Replicas and Placement of the bucket (default 1, anywhere).
	Replicas  int
	Placement *jetstream.Placement
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Elector runs elections in one bucket.
type Elector struct {
	kv  jetstream.KeyValue
	cfg Config
}

// New creates (or reuses) the bucket. Its TTL is the lease term: every
// renewal is a new write, so a key lives TTL after its last renewal.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Elector, error) {
	cfg.setDefaults()
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("lease: ttl %s is shorter than 1s", cfg.TTL)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "cecbridge poller leases: one holder per tenant",
		TTL:         cfg.TTL,
		History:     1,
		Replicas:    cfg.Replicas,
		Placement:   cfg.Placement,
	})
	if err != nil {
		return nil, fmt.Errorf("lease: bucket %s: %w", cfg.Bucket, err)
	}
	return &Elector{kv: kv, cfg: cfg}, nil
}

// Hold campaigns for key until ctx ends. Each time it wins, lead runs with
// a context that is cancelled when the term ends (a renewal failed or ctx
// ended); Hold waits for lead to return, then campaigns again. It returns
// nil when ctx ends.
func (e *Elector) Hold(ctx context.Context, key string, lead func(ctx context.Context)) error {
	campaign := e.cfg.Campaign
	log := e.cfg.Logger.With("lease", key)
	for {
		rev, err := e.kv.Create(ctx, key, []byte(e.cfg.Holder))
		if err == nil {
			log.Info("lease acquired; polling", "holder", e.cfg.Holder)
			last, held := e.term(ctx, key, rev, lead)
			log.Info("lease term ended")
			if held {
				// Ended by us (shutdown, or lead gave up), not by a lost
				// renewal: hand the lease on now rather than after the TTL.
				e.release(key, last)
			}
			if ctx.Err() != nil {
				return nil
			}
		} else if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			log.Warn("lease campaign failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(campaign):
		}
	}
}

// term runs lead while renewing the key; it returns once lead has
// returned, with the last revision it wrote and whether it still held the
// lease at the end (false when a renewal failed).
func (e *Elector) term(ctx context.Context, key string, rev uint64, lead func(ctx context.Context)) (uint64, bool) {
	termCtx, end := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(termCtx)
	}()
	tick := time.NewTicker(e.cfg.TTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-done:
			end()
			return rev, true
		case <-ctx.Done():
			end()
			<-done
			return rev, true
		case <-tick.C:
			rctx, cancel := context.WithTimeout(ctx, e.cfg.TTL/3)
			next, err := e.kv.Update(rctx, key, []byte(e.cfg.Holder), rev)
			cancel()
			if err != nil {
				// Someone else holds it, or we could not confirm in time:
				// either way we may no longer act as the holder.
				e.cfg.Logger.Warn("lease renewal failed; stepping down", "lease", key, "err", err)
				end()
				<-done
				return rev, false
			}
			rev = next
		}
	}
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
	entry, err := e.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lease: %w", err)
	}
	return string(entry.Value()), nil
}
