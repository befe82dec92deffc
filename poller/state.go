package poller

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// agent is everything the poller keeps per tracked agent. It is small on
// purpose: a tenant may have 60,000 of them.
type agent struct {
	workNo int

	// calls entity
	calls      []string // sorted; nil with callsSeq 0 means never observed
	callsSeq   uint64
	callsSeen  time.Time // by_poll of the last successful calls poll
	lastInCall time.Time // last poll that saw at least one call
	visible    bool
	monitor    int // index into Tenant.monitors, -1 if none covers it

	// softphone entity
	softphone schemas.AgentSoftphone
	spSeq     uint64
	spSeen    time.Time
	spDeleted bool // the last softphone event was a delete
	inRoster  bool // present in the last complete roster
	// fromFirstRoster marks agents of the bridge's first complete roster
	// since start: their first events are snapshots, later ones creates.
	fromFirstRoster bool

	// scheduling
	due      time.Time
	heapIdx  int // position in its queue, -1 when not queued
	active   bool
	inFlight bool
}

// phone is the state of one softphone number.
type phone struct {
	state   schemas.PhoneState
	seq     uint64
	seen    time.Time
	deleted bool
}

// encoder builds records for one tenant.
type encoder struct {
	source string
	term   string // qualifies message IDs: one writer's term
}

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
	return schemas.Record{Subject: subject, ID: id + "." + e.term, Seq: seq, Body: body}, nil
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
