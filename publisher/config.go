package publisher

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for zero Config fields.
const (
	DefaultEventsStream    = schemas.EventsStream
	DefaultStateStream     = schemas.StateStream
	DefaultMaxAge          = 7 * 24 * time.Hour
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultMaxInFlight     = 1024
	DefaultAckTimeout      = 5 * time.Second
	DefaultBufferEvents    = 100_000
	DefaultSpoolMaxBytes   = 256 << 20
)

// Publish outcomes reported to an [Observer].
const (
	OutcomeOK        = "ok"
	OutcomeDuplicate = "duplicate"
	OutcomeConflict  = "conflict"
	OutcomeRetry     = "retry"
	OutcomeError     = "error"
)

// Observer receives one call per publish attempt: its outcome and how long
// it took from send to answer. It is called from the publishing loop and
// must return quickly.
type Observer interface {
	ObservePublish(outcome string, d time.Duration)
}

// ErrConfig is wrapped by every configuration error of this package.
var ErrConfig = errors.New("publisher: invalid configuration")

// Config configures [Provision] and [New]. Zero values take the defaults.
type Config struct {
	// EventsStream is the stream holding every event (subjects cec.evt.>).
	EventsStream string
	// StateStream keeps the last event of every subject, sourced from
	// EventsStream, with no age limit.
	StateStream string
	// Replicas of both streams (default 1).
	Replicas int
	// Placement, if set, pins both streams' replicas to a cluster and to
	// servers with the given tags.
	Placement *jetstream.Placement
	// MaxAge is the events' retention (default 7 days).
	MaxAge time.Duration
	// MaxBytes bounds the events stream (default -1, unlimited).
	MaxBytes int64
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id
	// (default 2 min, at most MaxAge). Retries must land within it.
	DuplicateWindow time.Duration
	// UpdateExisting lets Provision change streams that exist to the
	// settings above. Off, a stream whose settings differ is left as it
	// is and reported ([ErrDrift]): an operator's change would otherwise be
	// overwritten, and a smaller MaxAge purges data.
	UpdateExisting bool

	// MaxInFlight bounds unacknowledged publishes (default 1024).
	MaxInFlight int
	// AckTimeout is how long one publish waits for its ack before it is
	// treated as ambiguous and retried (default 5 s).
	AckTimeout time.Duration
	// BufferEvents bounds the records held in memory, in flight included
	// (default 100000).
	BufferEvents int
	// SpoolDir, if set, is where records beyond BufferEvents are appended
	// while NATS is slow or away. Segments left by an earlier run are
	// discarded at start: that run's terms are over.
	SpoolDir string
	// SpoolMaxBytes bounds the spool (default 256 MiB).
	SpoolMaxBytes int64

	// Observer, if set, receives per-attempt outcomes and latencies.
	Observer Observer
	// Logger receives warnings (refused records, conflicts, failures).
	// Nil discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.EventsStream == "" {
		c.EventsStream = DefaultEventsStream
	}
	if c.StateStream == "" {
		c.StateStream = DefaultStateStream
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = -1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = min(DefaultDuplicateWindow, c.MaxAge)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.BufferEvents == 0 {
		c.BufferEvents = DefaultBufferEvents
	}
	if c.SpoolMaxBytes == 0 {
		c.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, c.validate()
}

// validate reports every problem of a defaulted c at once, wrapping
// ErrConfig.
func (c Config) validate() error {
	var errs []error
	if c.EventsStream == c.StateStream {
		errs = append(errs, fmt.Errorf("EventsStream and StateStream are both %q", c.EventsStream))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("%d Replicas, not in 1..5", c.Replicas))
	}
	if c.MaxAge < 0 {
		errs = append(errs, errors.New("negative MaxAge"))
	}
	if c.DuplicateWindow < 100*time.Millisecond || c.DuplicateWindow > c.MaxAge {
		errs = append(errs, fmt.Errorf("DuplicateWindow %s must be within 100ms..MaxAge (%s)", c.DuplicateWindow, c.MaxAge))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("MaxInFlight %d < 1", c.MaxInFlight))
	}
	if c.AckTimeout < 0 {
		errs = append(errs, errors.New("negative AckTimeout"))
	}
	if c.BufferEvents < 1 {
		errs = append(errs, fmt.Errorf("BufferEvents %d < 1", c.BufferEvents))
	}
	if c.SpoolMaxBytes < 0 {
		errs = append(errs, errors.New("negative SpoolMaxBytes"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
