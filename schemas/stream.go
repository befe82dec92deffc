package schemas

import (
	"strconv"
	"strings"
)

// The streams the bridge writes, by their default names.
const (
	// EventsStream keeps every event for the audit retention.
	EventsStream = "CEC_EVENTS"
	// StateStream is sourced from EventsStream and keeps the last event of
	// every subject with no age limit.
	StateStream = "CEC_STATE"
)

// SourceHeader names, on a message the state stream sourced, the origin
// stream and sequence: "<stream> <seq> ...".
const SourceHeader = "Nats-Stream-Source"

// OriginSeq reads the events-stream sequence out of a SourceHeader value;
// 0 when it is absent or malformed.
func OriginSeq(h string) uint64 {
	f := strings.Fields(h)
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Stored is the last event a stream holds on a subject.
type Stored struct {
	Subject string
	// StreamSeq is the events-stream sequence of the event, 0 if it has
	// aged out of the events stream (the state stream still holds it).
	StreamSeq uint64
	Event     Event
	Body      []byte
}
