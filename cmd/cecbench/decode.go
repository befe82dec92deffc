package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// observed is one bridge event as read from the stream, reduced to what the
// scoring needs.
type observed struct {
	Subject string
	Type    string
	Op      schemas.Op
	Seq     uint64
	WorkNo  int
	Phone   string
	// Before and After are the entity's state as a set of values: call IDs
	// for calls, "sip|account" for a softphone, the status code for a phone.
	Before, After []string
	ByPoll        time.Time
	Stored        time.Time // stream timestamp (zero if unknown)
	Size          int

	// What the chaos drill checks a history with: the CloudEvent id and
	// prev_id, the start of the detection window (zero for snapshots), and,
	// filled in by the reader, the Nats-Msg-Id, the stream sequence and a
	// digest of the stored body.
	ID, PrevID string
	AfterPoll  time.Time
	MsgID      string
	StreamSeq  uint64
	Digest     uint64
}

// decodeEvent turns one stored event body into an observed event. Bridge
// events (visibility, heartbeat) come back with ok == false.
func decodeEvent(subject string, body []byte, stored time.Time) (observed, bool, error) {
	var ev schemas.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return observed{}, false, fmt.Errorf("decode event on %s: %w", subject, err)
	}
	o := observed{Subject: subject, Type: ev.Type, Stored: stored, Size: len(body), ID: ev.ID}
	var err error
	switch ev.Type {
	case schemas.TypeAgentCalls:
		err = decodeChange(&o, ev.Data, "calls", func(c *schemas.AgentCalls) []string { return c.CallIDs })
	case schemas.TypeAgentSoftphone:
		err = decodeChange(&o, ev.Data, "softphone", func(c *schemas.AgentSoftphone) []string {
			return []string{c.SIPAccount + "|" + c.AccountCode}
		})
	case schemas.TypeAgentState:
		err = decodeChange(&o, ev.Data, "agent state", func(c *schemas.AgentState) []string { return []string{strconv.Itoa(c.StateCode)} })
	case schemas.TypePhoneState:
		err = decodeChange(&o, ev.Data, "phone", func(c *schemas.PhoneState) []string { return []string{strconv.Itoa(c.StatusCode)} })
	default:
		return o, false, nil
	}
	if err != nil {
		return o, false, err
	}
	return o, true, nil
}

// decodeChange fills o from an entity event's data; values names the
// entity's state as the scoring compares it.
func decodeChange[T any](o *observed, data []byte, what string, values func(*T) []string) error {
	var c schemas.Change[T]
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("decode %s on %s: %w", what, o.Subject, err)
	}
	o.Op, o.Seq, o.PrevID, o.WorkNo, o.Phone, o.ByPoll = c.Op, c.Seq, c.PrevID, c.Key.WorkNo, c.Key.PhoneNum, c.Detected.ByPoll
	if c.Detected.AfterPoll != nil {
		o.AfterPoll = *c.Detected.AfterPoll
	}
	if c.Before != nil {
		o.Before = values(c.Before)
	}
	if c.After != nil {
		o.After = values(c.After)
	}
	return nil
}

// decodeHeartbeat reads a bridge heartbeat event.
func decodeHeartbeat(body []byte) (schemas.Heartbeat, error) {
	return decodeBridgeEvent[schemas.Heartbeat](body, "heartbeat")
}

// decodeVisibility reads a bridge visibility event.
func decodeVisibility(body []byte) (schemas.Visibility, error) {
	return decodeBridgeEvent[schemas.Visibility](body, "visibility")
}

// decodeBridgeEvent reads the data of a bridge event.
func decodeBridgeEvent[T any](body []byte, what string) (T, error) {
	var ev schemas.Event
	var v T
	if err := json.Unmarshal(body, &ev); err != nil {
		return v, fmt.Errorf("decode %s: %w", what, err)
	}
	if err := json.Unmarshal(ev.Data, &v); err != nil {
		return v, fmt.Errorf("decode %s data: %w", what, err)
	}
	return v, nil
}
