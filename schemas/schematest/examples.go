package schematest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// exampleTime is fixed so that example bodies are byte-stable (golden files).
var exampleTime = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

// NewEvent wraps data in an envelope of eventType on subject, with the
// deterministic ID of the seq-th event on that subject and the type's
// dataschema, and returns the encoded event as a Record.
func NewEvent(eventType, subject string, seq uint64, data any) schemas.Record {
	d, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("schematest: encoding data: %v", err))
	}
	p, _ := schemas.ParseSubject(subject)
	ev := schemas.Event{
		SpecVersion:     schemas.SpecVersion,
		ID:              schemas.EventID(subject, seq),
		Source:          "/cecbridge/" + p.Tenant,
		Type:            eventType,
		Subject:         subject,
		Time:            exampleTime.Add(time.Duration(seq) * time.Second),
		DataContentType: schemas.ContentType,
		DataSchema:      schemas.DataSchema(eventType),
		Data:            d,
	}
	body, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("schematest: encoding event: %v", err))
	}
	return schemas.Record{Subject: subject, ID: ev.ID, Seq: seq, Body: body}
}

func prevID(subject string, seq uint64) string {
	if seq <= 1 {
		return ""
	}
	return schemas.EventID(subject, seq-1)
}

// CallsRecord is a valid agent-calls event: the seq-th change of agent
// workNo of tenant, whose calls are now callIDs (seq 1 is a snapshot, later
// ones are updates from a state with one call fewer).
func CallsRecord(tenant string, workNo int, seq uint64, callIDs ...string) schemas.Record {
	subj := schemas.AgentCallsSubject(tenant, workNo)
	if callIDs == nil {
		callIDs = []string{}
	}
	by := exampleTime.Add(time.Duration(seq) * time.Second)
	ch := schemas.Change[schemas.AgentCalls]{
		Op:       schemas.OpSnapshot,
		Key:      schemas.Key{Tenant: tenant, WorkNo: workNo},
		Seq:      seq,
		PrevID:   prevID(subj, seq),
		After:    &schemas.AgentCalls{CallIDs: callIDs},
		Detected: schemas.Detected{ByPoll: by},
	}
	if seq > 1 {
		after := by.Add(-time.Second)
		ch.Op = schemas.OpUpdate
		ch.Before = &schemas.AgentCalls{CallIDs: []string{fmt.Sprintf("c-%d-%d", workNo, seq-1)}}
		ch.Detected.AfterPoll = &after
	}
	return NewEvent(schemas.TypeAgentCalls, subj, seq, ch)
}

// Examples returns one valid encoded event of each event type, keyed by
// type. The bodies are byte-stable.
func Examples() map[string][]byte {
	after := exampleTime.Add(-5 * time.Second)
	out := map[string][]byte{}
	out[schemas.TypeAgentCalls] = CallsRecord("acme", 1522, 2, "1700000000-42").Body

	subj := schemas.AgentSoftphoneSubject("acme", 1522)
	out[schemas.TypeAgentSoftphone] = NewEvent(schemas.TypeAgentSoftphone, subj, 3, schemas.Change[schemas.AgentSoftphone]{
		Op: schemas.OpUpdate, Key: schemas.Key{Tenant: "acme", WorkNo: 1522}, Seq: 3, PrevID: prevID(subj, 3),
		Before:   &schemas.AgentSoftphone{SIPAccount: "88001522", SIPServerIP: "10.0.0.5", SIPServerPort: 5060},
		After:    &schemas.AgentSoftphone{SIPAccount: "88001522", AccountCode: "ac1522", SIPServerIP: "10.0.0.6", SIPServerPort: 5060},
		Detected: schemas.Detected{AfterPoll: &after, ByPoll: exampleTime},
	}).Body

	// A call answered: the IDs stay, the status moves, so only v2 changes.
	subj = schemas.AgentCallsV2Subject("acme", 1522)
	ringing := schemas.Call{ID: "1700000000-42", Status: "alerting", Direction: schemas.DirectionInbound, MediaType: 5}
	answered := ringing
	answered.Status = "talking"
	out[schemas.TypeAgentCallsV2] = NewEvent(schemas.TypeAgentCallsV2, subj, 5, schemas.Change[schemas.AgentCallsV2]{
		Op: schemas.OpUpdate, Key: schemas.Key{Tenant: "acme", WorkNo: 1522}, Seq: 5, PrevID: prevID(subj, 5),
		Before:   &schemas.AgentCallsV2{CallIDs: []string{ringing.ID}, Calls: []schemas.Call{ringing}},
		After:    &schemas.AgentCallsV2{CallIDs: []string{answered.ID}, Calls: []schemas.Call{answered}},
		Detected: schemas.Detected{AfterPoll: &after, ByPoll: exampleTime, Source: schemas.SourceCMS},
	}).Body

	subj = schemas.AgentStateSubject("acme", 1522)
	signedIn := exampleTime.Add(-2 * time.Hour)
	out[schemas.TypeAgentState] = NewEvent(schemas.TypeAgentState, subj, 7, schemas.Change[schemas.AgentState]{
		Op: schemas.OpUpdate, Key: schemas.Key{Tenant: "acme", WorkNo: 1522}, Seq: 7, PrevID: prevID(subj, 7),
		Before:   &schemas.AgentState{State: "idle", StateCode: 1, Since: exampleTime.Add(-5 * time.Minute), PrevState: "wrap_up", SignedInAt: &signedIn},
		After:    &schemas.AgentState{State: "answering", StateCode: 4, Since: exampleTime.Add(-time.Second), PrevState: "idle", SignedInAt: &signedIn},
		Detected: schemas.Detected{AfterPoll: &after, ByPoll: exampleTime, Source: schemas.SourceCMS},
	}).Body

	subj = schemas.PhoneStateSubject("acme", "+8613800001234")
	out[schemas.TypePhoneState] = NewEvent(schemas.TypePhoneState, subj, 1, schemas.Change[schemas.PhoneState]{
		Op: schemas.OpSnapshot, Key: schemas.Key{Tenant: "acme", PhoneNum: "+8613800001234"}, Seq: 1,
		After:    &schemas.PhoneState{Status: schemas.PhoneRegistered, StatusCode: 0, ConfigID: 7},
		Detected: schemas.Detected{ByPoll: exampleTime},
	}).Body

	subj = schemas.BridgeSubject("acme", schemas.BridgeVisibility)
	out[schemas.TypeBridgeVisibility] = NewEvent(schemas.TypeBridgeVisibility, subj, 4, schemas.Visibility{
		Seq: 4, PrevID: prevID(subj, 4), Tenant: "acme", State: schemas.VisibilityLost, Scope: schemas.ScopeCalls,
		Agents: schemas.FormatRanges([]int{101, 102, 103, 200}), Count: 4, Since: exampleTime, Reason: "session lost",
	}).Body

	subj = schemas.BridgeSubject("acme", schemas.BridgeStatesVisibility)
	out[schemas.TypeBridgeStatesVisibility] = NewEvent(schemas.TypeBridgeStatesVisibility, subj, 3, schemas.StatesVisibility{
		Seq: 3, PrevID: prevID(subj, 3), Tenant: "acme",
		NotVisible: schemas.FormatRanges([]int{1522, 1523, 1524, 1600}), Count: 4, Since: exampleTime, Reason: "timeout",
	}).Body

	subj = schemas.BridgeSubject("acme", schemas.BridgeHeartbeat)
	out[schemas.TypeBridgeHeartbeat] = NewEvent(schemas.TypeBridgeHeartbeat, subj, 1, schemas.Heartbeat{
		Seq: 1, Tenant: "acme", Instance: "bridge-a", Started: exampleTime.Add(-time.Hour),
		AgentsTracked: 1200, AgentsVisible: 1199, NotVisible: "1522", RosterVisible: true, PhonesVisible: true,
		PhonesTracked: 1500, EventsEmitted: 98765,
		LastCallsPoll: exampleTime, LastRosterPoll: exampleTime, LastPhonesPoll: exampleTime,
	}).Body
	return out
}
