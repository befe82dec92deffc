package schemas

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// SpecVersion is the CloudEvents version every envelope carries.
const SpecVersion = "1.0"

// ContentType is the datacontenttype of every event.
const ContentType = "application/json"

// EnvelopeContentType is the Content-Type header of every event message: the
// CloudEvents NATS binding reads a message with a CloudEvents content type
// as structured mode (the whole envelope is the body), and newer SDKs read a
// message without one as binary mode.
const EnvelopeContentType = "application/cloudevents+json; charset=utf-8"

// Event types, one per entity aspect plus the bridge's own events (the
// types of the CMS facts are in aspects.go, the states picture's in
// statesvis.go).
const (
	TypeAgentCalls       = "io.cecbridge.agent.calls.v1"
	TypeAgentSoftphone   = "io.cecbridge.agent.softphone.v1"
	TypePhoneState       = "io.cecbridge.phone.state.v1"
	TypeBridgeVisibility = "io.cecbridge.bridge.visibility.v1"
	TypeBridgeHeartbeat  = "io.cecbridge.bridge.heartbeat.v1"
)

// EventTypes lists every event type.
var EventTypes = []string{TypeAgentCalls, TypeAgentCallsV2, TypeAgentSoftphone, TypeAgentState, TypePhoneState, TypeBridgeVisibility, TypeBridgeHeartbeat, TypeBridgeStatesVisibility}

// Op says what kind of change an entity event records.
type Op string

// The operations, after Debezium: snapshot is the first sight of an entity
// that the stream has never described; create, update and delete are changes
// against the last published state.
const (
	OpSnapshot Op = "snapshot"
	OpCreate   Op = "create"
	OpUpdate   Op = "update"
	OpDelete   Op = "delete"
)

// Event is a CloudEvents 1.0 envelope in structured JSON mode. Data holds the
// encoded payload (a [Change] for entity events, a [Visibility] or
// [Heartbeat] for bridge events).
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema"`
	Data            json.RawMessage `json:"data"`
}

// Detected brackets the instant of a change: polling cannot know it exactly,
// only that the poll that completed at AfterPoll still saw the old state and
// the one that completed at ByPoll saw the new one. AfterPoll is absent for
// snapshots. Source says which interface observed the new state
// (SourceCMS, SourceGateway); it exists only in agent.calls.v2 and
// agent.state.v1, whose schemas allow it: the v1 schemas of the other
// types are closed, so their events must leave it empty.
type Detected struct {
	AfterPoll *time.Time `json:"after_poll,omitempty"`
	ByPoll    time.Time  `json:"by_poll"`
	Source    string     `json:"source,omitempty"`
}

// Key identifies the entity an event is about. Exactly one of WorkNo and
// PhoneNum is set for entity events.
type Key struct {
	Tenant   string `json:"tenant"`
	WorkNo   int    `json:"work_no,omitempty"`
	PhoneNum string `json:"phone_num,omitempty"`
}

// Change is the payload of an entity event. Seq counts the entity's events
// from 1 with no holes and PrevID names the event before it, so a consumer
// can tell that it missed something.
type Change[T any] struct {
	Op       Op       `json:"op"`
	Key      Key      `json:"key"`
	Seq      uint64   `json:"seq"`
	PrevID   string   `json:"prev_id,omitempty"`
	Before   *T       `json:"before"`
	After    *T       `json:"after"`
	Detected Detected `json:"detected"`
}

// AgentCalls is the state of one agent's calls: the call IDs the vendor
// reports for it, sorted.
type AgentCalls struct {
	CallIDs []string `json:"call_ids"`
}

// AgentSoftphone is one agent's softphone binding as queryAgentInfo reports
// it. The SIP password is never part of it.
type AgentSoftphone struct {
	SIPAccount    string `json:"sip_account,omitempty"`
	AccountCode   string `json:"account_code,omitempty"`
	SIPServerIP   string `json:"sip_server_ip,omitempty"`
	SIPServerPort int    `json:"sip_server_port,omitempty"`
}

// Phone registration states.
const (
	PhoneRegistered = "registered"
	PhoneSuspended  = "suspended"
	PhoneUnknown    = "unknown"
)

// PhoneState is one softphone number's registration state as queryPhone
// reports it. The phone password is never part of it.
type PhoneState struct {
	Status     string `json:"status"`
	StatusCode int    `json:"status_code"`
	ConfigID   int64  `json:"config_id,omitempty"`
}

// PhoneStatus names a queryPhone status code.
func PhoneStatus(code int) string {
	switch code {
	case 0:
		return PhoneRegistered
	case 1:
		return PhoneSuspended
	default:
		return PhoneUnknown
	}
}

// Visibility states.
const (
	VisibilityLost     = "lost"
	VisibilityRestored = "restored"
)

// Visibility scopes: which observation the bridge lost or regained.
const (
	ScopeCalls     = "calls"
	ScopeSoftphone = "softphone"
	ScopePhones    = "phones"
)

// Visibility is the payload of a bridge visibility event: the bridge could
// not (or can again) observe some entities. While an entity is not visible
// its last published state stands; nothing is reported as ended.
type Visibility struct {
	Seq    uint64    `json:"seq"`
	PrevID string    `json:"prev_id,omitempty"`
	Tenant string    `json:"tenant"`
	State  string    `json:"state"`
	Scope  string    `json:"scope"`
	Agents string    `json:"agents,omitempty"` // workNo ranges, "101-180,200"
	Count  int       `json:"count"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
}

// Heartbeat is the payload of the bridge's periodic liveness event.
type Heartbeat struct {
	Seq           uint64    `json:"seq"`
	PrevID        string    `json:"prev_id,omitempty"`
	Tenant        string    `json:"tenant"`
	Instance      string    `json:"instance"`
	Started       time.Time `json:"started"`
	AgentsTracked int       `json:"agents_tracked"`
	AgentsVisible int       `json:"agents_visible"`
	// NotVisible lists (as work-number ranges) the agents whose calls the
	// bridge cannot observe right now; with RosterVisible and PhonesVisible
	// it is the whole visibility picture, so a reader that starts late
	// (the stream keeps only the last visibility event) can rebuild it.
	NotVisible     string    `json:"not_visible,omitempty"`
	RosterVisible  bool      `json:"roster_visible"`
	PhonesVisible  bool      `json:"phones_visible"`
	PhonesTracked  int       `json:"phones_tracked"`
	EventsEmitted  uint64    `json:"events_emitted"`
	LastCallsPoll  time.Time `json:"last_calls_poll,omitzero"`
	LastRosterPoll time.Time `json:"last_roster_poll,omitzero"`
	LastPhonesPoll time.Time `json:"last_phones_poll,omitzero"`
}

// Record is an encoded event ready to publish: the NATS subject, the event
// ID (the publisher's writer qualifies it with its term to make the
// Nats-Msg-Id, so a retry within the term is deduplicated while another
// writer's event of the same seq is recognised as a conflict, not mistaken
// for ours), the per-subject sequence and the encoded envelope.
type Record struct {
	Subject string
	ID      string
	Seq     uint64
	Body    []byte
}

// idSpace is the UUID namespace of event IDs.
var idSpace = uuid.MustParse("6f1c7c53-3f0e-4f39-9a55-2d1e5b0c8a41")

// EventID is the deterministic ID of the seq-th event on subject: the same
// inputs give the same ID, so a retry after a crash or an ambiguous publish is
// recognised as a duplicate by JetStream.
func EventID(subject string, seq uint64) string {
	name := strconv.AppendUint(append([]byte(subject), '#'), seq, 10)
	return uuid.NewSHA1(idSpace, name).String()
}
