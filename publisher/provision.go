package publisher

import (
	"context"
	"fmt"

	"github.com/cecbridge/cecbridge/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfigs returns the configurations Provision applies: the events
// stream and the state stream sourced from it.
func StreamConfigs(cfg Config) (events, state jetstream.StreamConfig, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return events, state, err
	}
	events = jetstream.StreamConfig{
		Name:        cfg.EventsStream,
		Description: "cecbridge events: every change, for the audit retention",
		Subjects:    []string{schemas.AllEvents},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Placement:   cfg.Placement,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		MaxMsgs:     -1,
		Duplicates:  cfg.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
		AllowDirect: true,
	}
	state = jetstream.StreamConfig{
		Name:        cfg.StateStream,
		Description: "cecbridge state: the last event of every subject, kept past the events' retention",
		Sources:     []*jetstream.StreamSource{{Name: cfg.EventsStream}},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Placement:   cfg.Placement,
		// One message per subject is the current state; no age limit so
		// that it outlives the events.
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	}
	return events, state, nil
}

// Provision creates both streams or updates them to cfg. It is idempotent
// and meant to run at every start.
func Provision(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	events, state, err := StreamConfigs(cfg)
	if err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, events); err != nil {
		return fmt.Errorf("publisher: provision stream %s: %w", events.Name, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, state); err != nil {
		return fmt.Errorf("publisher: provision stream %s: %w", state.Name, err)
	}
	return nil
}
