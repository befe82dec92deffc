package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/schemas"
)

// Errors returned by [Provision], matched with errors.Is. An error that is
// neither is transient (NATS not reachable, JetStream busy or electing a
// leader): try again.
var (
	// ErrDrift says that a stream exists with settings that differ from
	// the configuration, and Provision left it as it is (Config.UpdateExisting
	// is off). The bridge works with it: warn, naming the fields
	// (errors.As gives the [*DriftError]s), and go on.
	ErrDrift = errors.New("publisher: stream settings differ from the configuration")
	// ErrPermanent says that no retry can succeed until an operator acts:
	// a stream the bridge cannot work with, a change JetStream refuses,
	// missing permissions, JetStream not enabled. Test it before ErrDrift:
	// a drift that breaks the bridge matches both.
	ErrPermanent = errors.New("publisher: streams cannot be provisioned")
)

// FieldDrift is one setting in which a live stream differs from the
// configuration. Field is the setting's JetStream JSON name.
type FieldDrift struct {
	Field, Wanted, Live string
}

// DriftError is how one live stream differs from the configuration.
type DriftError struct {
	Stream string
	Fields []FieldDrift
	// Breaking is set when the bridge cannot keep its guarantees with the
	// live settings: the events stream does not take the events' subjects,
	// or the state stream is not sourced from the events stream.
	Breaking bool
}

func (e *DriftError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = fmt.Sprintf("%s wanted %s, live %s", f.Field, f.Wanted, f.Live)
	}
	return fmt.Sprintf("publisher: stream %s differs from the configuration: %s", e.Stream, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, ErrDrift) hold.
func (e *DriftError) Is(target error) bool { return target == ErrDrift }

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

// Provision creates both streams if they are missing. A stream that exists
// is compared, setting by setting, with the configuration: a difference is
// reported as a [*DriftError] and the stream is left as it is, unless
// cfg.UpdateExisting asks to update it. It is meant to run at every start;
// see [ErrDrift] and [ErrPermanent] for what its errors mean. A drift is
// returned only once both streams are in place.
func Provision(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	events, state, err := StreamConfigs(cfg)
	if err != nil {
		return err
	}
	var drifts []error
	for _, spec := range specs(events, state) {
		err := provisionStream(ctx, js, spec, cfg.UpdateExisting, cfg.Logger)
		var d *DriftError
		switch {
		case err == nil:
		case errors.As(err, &d) && !d.Breaking:
			drifts = append(drifts, err)
		default:
			return err
		}
	}
	return errors.Join(drifts...)
}

func provisionStream(ctx context.Context, js jetstream.JetStream, spec streamSpec, update bool, log *slog.Logger) error {
	want := spec.cfg
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, want)
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return classify(js, fmt.Sprintf("create stream %s", want.Name), err)
		}
		// Another instance created it a moment ago, maybe differently.
		s, err = js.Stream(ctx, want.Name)
	}
	if err != nil {
		return classify(js, fmt.Sprintf("stream %s", want.Name), err)
	}
	drift := spec.diff(s.CachedInfo().Config)
	if drift == nil {
		return nil
	}
	if !update {
		if drift.Breaking {
			return fmt.Errorf("%w: %w (the bridge cannot work with it: fix the stream, or let the bridge update it)", ErrPermanent, drift)
		}
		return drift
	}
	live := s.CachedInfo().Config
	if fieldPlace.show(want) == anyValue || fieldPlace.show(want) == fieldPlace.show(live) {
		// Unconfigured, or the same but for the order of its tags: sent
		// as the server has it, or the update would move the stream.
		want.Placement = live.Placement
	}
	steps := []jetstream.StreamConfig{want}
	if live.Replicas != want.Replicas && fieldPlace.show(live) != fieldPlace.show(want) && fieldPlace.show(want) != anyValue {
		// JetStream scales and moves a stream in separate updates.
		scale := want
		scale.Placement = live.Placement
		steps = []jetstream.StreamConfig{scale, want}
	}
	for _, step := range steps {
		if err := updateStream(ctx, js, step); err != nil {
			return classify(js, fmt.Sprintf("update stream %s (%s)", want.Name, strings.TrimPrefix(drift.Error(), "publisher: ")), err)
		}
	}
	log.Warn("stream updated to the configuration", "stream", want.Name, "changes", drift.Error())
	return nil
}

// updateStream updates a stream, waiting out a reconfiguration still in
// progress (the scale before a move) for as long as ctx allows.
func updateStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	for {
		_, err := js.UpdateStream(ctx, cfg)
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeReconfiguring {
			return err
		}
		select {
		case <-ctx.Done():
			// Not the refusal: a reconfiguration still running is no
			// reason to give up for good; the next attempt goes on.
			return fmt.Errorf("waiting for a reconfiguration of %s to finish: %w", cfg.Name, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// classify wraps err from a JetStream API call, adding ErrPermanent when
// no retry can fix it.
func classify(js jetstream.JetStream, what string, err error) error {
	if err == nil {
		return nil
	}
	if isPermanentAPIError(err) || deniedByPermissions(js, err) {
		return fmt.Errorf("%w: %s: %w", ErrPermanent, what, err)
	}
	return fmt.Errorf("publisher: %s: %w", what, err)
}

// isPermanentAPIError tells JetStream's refusals that stand until an
// operator acts: every bad request (a subject overlap, a limit of the
// account), an invalid configuration or a change the server does not allow
// (reported as a 500), a server too old, and JetStream not being there for
// the account. "Temporarily unavailable" and the like stay transient.
func isPermanentAPIError(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case errCodeReconfiguring, errCodeMoveInProgress:
		return false // answered 400, but they pass
	case jetstream.JSErrCodeJetStreamNotEnabledForAccount,
		jetstream.JSErrCodeJetStreamNotEnabled,
		errCodeNoAccount,
		errCodeInvalidConfig,
		errCodeStreamLimits,
		errCodeReplicasNotSupported,
		errCodeAPILevel:
		return true
	}
	return apiErr.Code == http.StatusBadRequest || apiErr.Code == http.StatusForbidden
}

// JetStream error codes without a constant in the client.
const (
	errCodeNoAccount            jetstream.ErrorCode = 10035 // account not found
	errCodeInvalidConfig        jetstream.ErrorCode = 10052 // invalid stream configuration, or a change not allowed
	errCodeStreamLimits         jetstream.ErrorCode = 10053 // beyond the account's stream limits
	errCodeReplicasNotSupported jetstream.ErrorCode = 10074 // replicas > 1 without a cluster
	errCodeAPILevel             jetstream.ErrorCode = 10185 // the server's API level is too old
	errCodeReconfiguring        jetstream.ErrorCode = 10226 // a scale or move of the stream is still in progress
	errCodeMoveInProgress       jetstream.ErrorCode = 10124 // a move of the stream is still in progress
)

// deniedByPermissions tells a request that timed out because the server
// refused to deliver it: NATS answers a publish permission violation with
// an asynchronous -ERR, never with a reply, and the client keeps it as its
// last error.
func deniedByPermissions(js jetstream.JetStream, err error) bool {
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
		return false
	}
	last := js.Conn().LastError()
	return errors.Is(last, nats.ErrPermissionViolation) && strings.Contains(last.Error(), "$JS.")
}

// streamField is one setting Provision compares, and how to print it.
// A field whose wanted value shows as anyValue is not configured and
// matches whatever the stream has.
type streamField struct {
	name string
	show func(jetstream.StreamConfig) string
}

// anyValue is how an unconfigured optional setting shows.
const anyValue = "(any)"

var (
	fieldSubjects = streamField{"subjects", func(c jetstream.StreamConfig) string { return showList(c.Subjects) }}
	fieldSources  = streamField{"sources", func(c jetstream.StreamConfig) string { return showSources(c.Sources) }}
	fieldStorage  = streamField{"storage", func(c jetstream.StreamConfig) string { return c.Storage.String() }}
	fieldReplicas = streamField{"num_replicas", func(c jetstream.StreamConfig) string { return strconv.Itoa(c.Replicas) }}
	fieldMaxAge   = streamField{"max_age", func(c jetstream.StreamConfig) string { return c.MaxAge.String() }}
	fieldMaxBytes = streamField{"max_bytes", func(c jetstream.StreamConfig) string { return strconv.FormatInt(c.MaxBytes, 10) }}
	fieldMaxMsgs  = streamField{"max_msgs", func(c jetstream.StreamConfig) string { return strconv.FormatInt(c.MaxMsgs, 10) }}
	fieldPerSubj  = streamField{"max_msgs_per_subject", func(c jetstream.StreamConfig) string { return strconv.FormatInt(c.MaxMsgsPerSubject, 10) }}
	fieldDupes    = streamField{"duplicate_window", func(c jetstream.StreamConfig) string { return c.Duplicates.String() }}
	fieldDiscard  = streamField{"discard", func(c jetstream.StreamConfig) string { return c.Discard.String() }}
	fieldDirect   = streamField{"allow_direct", func(c jetstream.StreamConfig) string { return strconv.FormatBool(c.AllowDirect) }}
	fieldPlace    = streamField{"placement", func(c jetstream.StreamConfig) string { return showPlacement(c.Placement) }}
)

// streamSpec is what Provision checks of one stream: the settings it
// gives, and the one without which the bridge cannot work (the events
// stream must take the events' subjects; the state stream must be sourced
// from the events stream, or it never learns the current state).
type streamSpec struct {
	cfg      jetstream.StreamConfig
	fields   []streamField
	breaking streamField
}

func specs(events, state jetstream.StreamConfig) []streamSpec {
	return []streamSpec{
		{events, []streamField{fieldSubjects, fieldStorage, fieldReplicas, fieldMaxAge, fieldMaxBytes, fieldMaxMsgs,
			fieldDupes, fieldDiscard, fieldDirect, fieldPlace}, fieldSubjects},
		{state, []streamField{fieldSources, fieldSubjects, fieldStorage, fieldReplicas, fieldPerSubj, fieldMaxMsgs,
			fieldMaxBytes, fieldMaxAge, fieldDiscard, fieldDirect, fieldPlace}, fieldSources},
	}
}

// diff compares live with the spec's settings; nil when they agree.
func (sp streamSpec) diff(live jetstream.StreamConfig) *DriftError {
	var d *DriftError
	for _, f := range sp.fields {
		w, l := f.show(sp.cfg), f.show(live)
		if w == l || w == anyValue {
			continue
		}
		if d == nil {
			d = &DriftError{Stream: sp.cfg.Name}
		}
		d.Fields = append(d.Fields, FieldDrift{Field: f.name, Wanted: w, Live: l})
		d.Breaking = d.Breaking || f.name == sp.breaking.name
	}
	return d
}

// showPlacement prints a placement; tags in any order are the same
// placement.
func showPlacement(p *jetstream.Placement) string {
	if p == nil || (p.Cluster == "" && len(p.Tags) == 0) {
		return anyValue
	}
	return "cluster " + strconv.Quote(p.Cluster) + " tags " + showList(p.Tags)
}

func showList(items []string) string {
	s := slices.Sorted(slices.Values(items))
	return "[" + strings.Join(s, ", ") + "]"
}

func showSources(srcs []*jetstream.StreamSource) string {
	var items []string
	for _, s := range srcs {
		if s == nil {
			continue
		}
		item := s.Name
		if s.FilterSubject != "" {
			item += " filter " + s.FilterSubject
		}
		for _, tr := range s.SubjectTransforms {
			item += " transform " + tr.Source + ">" + tr.Destination
		}
		if s.External != nil {
			item += " external " + s.External.APIPrefix
		}
		items = append(items, item)
	}
	return showList(items)
}
