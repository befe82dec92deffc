package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

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
