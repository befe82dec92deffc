package poller

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// aspect is what the poller keeps of one entity aspect (one subject): the
// last state it published, that event's sequence, and when an observation
// last confirmed the state. It is the one record of "what the stream says"
// for calls, softphones and phones alike.
type aspect[T any] struct {
	state   T
	seq     uint64    // 0: nothing published (or restored) yet
	seen    time.Time // by_poll of the last observation that saw state
	present bool      // false: never observed, or deleted
}

// set takes over a state published (or restored) at seq.
func (a *aspect[T]) set(seq uint64, at time.Time, state *T) {
	a.seq, a.seen = seq, at
	if state == nil {
		var zero T
		a.state, a.present = zero, false
		return
	}
	a.state, a.present = *state, true
}

// agent is everything the poller keeps per tracked agent. It is small on
// purpose: a tenant may have 60,000 of them.
type agent struct {
	workNo int

	calls      aspect[schemas.AgentCalls] // call IDs sorted
	lastInCall time.Time                  // last poll that saw at least one call
	visible    bool                       // written by visibility only, which counts the invisible
	monitor    int                        // index into Config.Monitors (MonitorFor), -1 if none covers it

	softphone aspect[schemas.AgentSoftphone]
	// inRoster: present in the last complete roster. Written through
	// setInRoster only, which keeps the counts Stats reads.
	inRoster bool
	// missing counts the complete rosters in a row that did not list the
	// agent; it is removed at the second (see pollRoster).
	missing uint8
	// fromFirstRoster marks agents of the bridge's first complete roster
	// since start: their first events are snapshots, later ones creates.
	fromFirstRoster bool

	// bySweep: the CMS sweep reports this agent's calls; it is not polled
	// one by one (see sweep.go). Written through setBySweep only. sweep
	// holds the sweep's own facts.
	bySweep bool
	sweep   *sweepFacts

	// scheduling
	due      time.Time
	heapIdx  int // position in its queue, -1 when not queued
	active   bool
	inFlight bool
}

// phone is the state of one softphone number.
type phone struct {
	// state: a change of state.present is booked with phoneChanged, which
	// keeps the counts Stats reads.
	state   aspect[schemas.PhoneState]
	missing uint8 // complete walks in a row without the number
	// fromFirstWalk marks numbers of the bridge's first complete phone
	// walk since start: their first event is a snapshot, also when a
	// later walk emits it (the sink refused the first).
	fromFirstWalk bool
}

// encoder builds records for one tenant.
type encoder struct{ source string }

func (e encoder) record(subject, eventType string, seq uint64, at time.Time, data any) (schemas.Record, error) {
	payload, err := json.Marshal(data)
	if err != nil {
		return schemas.Record{}, fmt.Errorf("poller: encode %s data: %w", eventType, err)
	}
	id := schemas.EventID(subject, seq)
	body, err := json.Marshal(schemas.Event{
		SpecVersion:     schemas.SpecVersion,
		ID:              id,
		Source:          e.source,
		Type:            eventType,
		Subject:         subject,
		Time:            at.UTC(),
		DataContentType: schemas.ContentType,
		DataSchema:      schemas.DataSchema(eventType),
		Data:            payload,
	})
	if err != nil {
		return schemas.Record{}, fmt.Errorf("poller: encode %s: %w", eventType, err)
	}
	return schemas.Record{Subject: subject, ID: id, Seq: seq, Body: body}, nil
}

// prevID names the event before seq on subject; IDs are derived, so nothing
// needs storing.
func prevID(subject string, seq uint64) string {
	if seq <= 1 {
		return ""
	}
	return schemas.EventID(subject, seq-1)
}

// detected brackets a change between the previous observation (zero if none)
// and now.
func detected(prev, now time.Time) schemas.Detected {
	d := schemas.Detected{ByPoll: now.UTC()}
	if !prev.IsZero() {
		p := prev.UTC()
		d.AfterPoll = &p
	}
	return d
}

// op chooses the operation for an entity change. first says the entity was
// seen in the bridge's first complete observation since start.
func op(hadState, hasState, first bool) schemas.Op {
	switch {
	case !hadState && first:
		return schemas.OpSnapshot
	case !hadState:
		return schemas.OpCreate
	case !hasState:
		return schemas.OpDelete
	default:
		return schemas.OpUpdate
	}
}

// change is the event for one aspect moving from its current state to
// after (nil: the entity is gone).
func change[T any](a *aspect[T], key schemas.Key, subject string, after *T, first bool, now time.Time) schemas.Change[T] {
	var before *T
	if a.present {
		b := a.state
		before = &b
	}
	seq := a.seq + 1
	return schemas.Change[T]{
		Op:       op(a.present, after != nil, first),
		Key:      key,
		Seq:      seq,
		PrevID:   prevID(subject, seq),
		Before:   before,
		After:    after,
		Detected: detected(a.seen, now),
	}
}

// emitChange publishes an aspect's change and, if the sink took it, makes
// it the aspect's state. Callers hold t.mu.
func emitChange[T any](t *Tenant, a *aspect[T], key schemas.Key, subject, eventType string, after *T, first bool, now time.Time) bool {
	return emitChangeFrom(t, a, key, subject, eventType, after, first, now, "")
}

// emitChangeFrom is emitChange for the event types that name the source of
// their observation (Detected.Source).
func emitChangeFrom[T any](t *Tenant, a *aspect[T], key schemas.Key, subject, eventType string, after *T, first bool, now time.Time, source string) bool {
	ch := change(a, key, subject, after, first, now)
	ch.Detected.Source = source
	if !t.emit(subject, eventType, ch.Seq, now, ch) {
		return false
	}
	a.set(ch.Seq, now, after)
	return true
}

// normaliseCalls sorts and de-duplicates, so that the order the vendor lists
// calls in never looks like a change.
func normaliseCalls(ids []string) []string {
	out := slices.Clone(ids)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
