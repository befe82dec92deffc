package schemas

import (
	"fmt"
	"time"
)

// Lookup endpoint subjects, relative to LookupSubject's tenant prefix
// "cec.lookup.<tenant>".
const (
	LookupAgentCalls     = "agent.calls"
	LookupAgentSoftphone = "agent.softphone"
	LookupAgentState     = "agent.state"
	LookupAgentByAccount = "agent.by_account"
	LookupPhoneState     = "phone.state"
	LookupAgentsList     = "agents.list"
	LookupPhonesList     = "phones.list"
)

// LookupEndpoints lists every lookup endpoint, in the order the service
// registers them.
var LookupEndpoints = []string{LookupAgentCalls, LookupAgentSoftphone, LookupAgentState, LookupAgentByAccount, LookupPhoneState, LookupAgentsList, LookupPhonesList}

// LookupErrorCodes lists, per endpoint, every error code it can answer
// with (see the Code constants). agent.by_account asks the vendor and has
// no visibility or history; the lists find no single entity.
var LookupErrorCodes = map[string][]int{
	LookupAgentCalls:     {CodeBadRequest, CodeNotFound, CodeNotVisible, CodeInternal, CodeUnavailable, CodeTimeout},
	LookupAgentSoftphone: {CodeBadRequest, CodeNotFound, CodeNotVisible, CodeInternal, CodeUnavailable, CodeTimeout},
	LookupAgentState:     {CodeBadRequest, CodeNotFound, CodeNotVisible, CodeInternal, CodeUnavailable, CodeTimeout},
	LookupAgentByAccount: {CodeBadRequest, CodeNotFound, CodeInternal, CodeUnavailable, CodeTimeout},
	LookupPhoneState:     {CodeBadRequest, CodeNotFound, CodeNotVisible, CodeInternal, CodeUnavailable, CodeTimeout},
	LookupAgentsList:     {CodeBadRequest, CodeNotVisible, CodeInternal, CodeUnavailable, CodeTimeout},
	LookupPhonesList:     {CodeBadRequest, CodeNotVisible, CodeInternal, CodeUnavailable, CodeTimeout},
}

// LookupSubject is the request subject of one lookup endpoint of a tenant,
// e.g. LookupSubject("dev", LookupAgentCalls) = "cec.lookup.dev.agent.calls".
func LookupSubject(tenant, endpoint string) string {
	return LookupPrefix + "." + tenant + "." + endpoint
}

// LookupSchemaFile names the JSON Schema file (under json/) of an endpoint's
// request (kind "request") or response (kind "response").
func LookupSchemaFile(endpoint, kind string) string {
	name := []byte(endpoint)
	for i, c := range name {
		if c == '.' {
			name[i] = '_'
		}
	}
	return fmt.Sprintf("lookup.%s.%s.json", name, kind)
}

// Lookup error codes, sent with micro's coded errors: the code in the
// Nats-Service-Error-Code header and a short description in
// Nats-Service-Error. The body of an error reply is empty. The set is
// deliberately small so callers can switch on it.
const (
	// CodeBadRequest: malformed JSON, unknown fields, a key missing or out of
	// range, an invalid token, an oversized payload. Do not retry unchanged.
	CodeBadRequest = 400
	// CodeNotFound: the view (or the vendor, for live lookups) has no such
	// entity.
	CodeNotFound = 404
	// CodeNotVisible: the entity is known but the bridge currently cannot
	// observe it; only returned when the request sets require_visible. Also
	// the answer to an as_of instant older than the events stream's
	// retention: the history is no longer there to look at.
	CodeNotVisible = 409
	// CodeInternal: a bug on the service side (a recovered panic included).
	CodeInternal = 500
	// CodeUnavailable: the vendor could not be asked, the state view is not
	// ready yet, or the service is saturated. Retry later.
	CodeUnavailable = 503
	// CodeTimeout: min_seq was not reached within wait, or the vendor did not
	// answer a live lookup in time.
	CodeTimeout = 504
)

// Lookup request limits.
const (
	MaxLookupPayload = 64 << 10 // bytes; larger requests get CodeBadRequest
	DefaultWait      = 2 * time.Second
	MaxWait          = 10 * time.Second
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ReadOptions are the consistency controls shared by view-backed requests.
//
// MinSeq asks the service to answer only once its view has applied that
// CEC_EVENTS sequence (read-your-write after a publish ack), waiting at most
// Wait (a Go duration string, default 2s, at most 10s); RequireVisible turns
// an answer about an entity the bridge cannot currently observe into
// CodeNotVisible.
//
// AsOf (an RFC 3339 instant in the past) asks for the entity as it stood
// then, rebuilt from CEC_EVENTS instead of read from the live view; it
// excludes MinSeq, Wait and MaxAge. RequireVisible then applies to the
// visibility at that instant.
type ReadOptions struct {
	MinSeq         uint64 `json:"min_seq,omitempty"`
	Wait           string `json:"wait,omitempty"`
	RequireVisible bool   `json:"require_visible,omitempty"`
	AsOf           string `json:"as_of,omitempty"`
}

// Meta is carried by every view-backed answer.
//
// StreamSeq is the CEC_EVENTS sequence the view had applied when it answered;
// Seq is the entity's per-entity event seq (0 when unknown); Observed is the
// detected.by_poll of the entity's last event, or the instant of a live
// fetch; Live says the answer came from the vendor, not from the view.
//
// An answer for a past instant (as_of) has StreamSeq the last CEC_EVENTS
// sequence stored at or before that instant, Seq, Observed and Visible as
// they were then, and AsOf saying how it was rebuilt.
type Meta struct {
	StreamSeq uint64     `json:"stream_seq"`
	Seq       uint64     `json:"seq"`
	Observed  *time.Time `json:"observed,omitempty"`
	Live      bool       `json:"live,omitempty"`
	Visible   bool       `json:"visible"`
	AsOf      *AsOf      `json:"as_of,omitempty"`
}

// Where an as_of answer's state came from (AsOf.From).
const (
	// AsOfEvent: the after of the last event of the entity stored at or
	// before the instant.
	AsOfEvent = "event"
	// AsOfNextBefore: that event has aged out of CEC_EVENTS, and the state
	// is the before of the first event stored after the instant.
	AsOfNextBefore = "next_before"
	// AsOfState: the entity has not changed since before the retention;
	// its last event, kept by CEC_STATE.
	AsOfState = "state"
)

// AsOf says how an answer for a past instant was rebuilt from CEC_EVENTS.
//
// At is the instant asked for; RetainedFrom is when the oldest message the
// events stream still holds was stored (an instant before it is answered
// with CodeNotVisible: the history is no longer there). For one entity,
// EventID names the event whose state the answer shows, EventStreamSeq is
// its CEC_EVENTS sequence (0 when it has aged out) and From says how it was
// found.
type AsOf struct {
	At             time.Time `json:"at"`
	RetainedFrom   time.Time `json:"retained_from"`
	EventID        string    `json:"event_id,omitempty"`
	EventStreamSeq uint64    `json:"event_stream_seq,omitempty"`
	From           string    `json:"from,omitempty"`
}

// AgentCallsRequest asks for the call IDs an agent holds. MaxAge (a Go
// duration string) makes the service ask the vendor live when the view's
// observation is older than that.
type AgentCallsRequest struct {
	WorkNo int    `json:"work_no"`
	MaxAge string `json:"max_age,omitempty"`
	ReadOptions
}

// AgentCallsResponse answers AgentCallsRequest.
type AgentCallsResponse struct {
	Tenant  string   `json:"tenant"`
	WorkNo  int      `json:"work_no"`
	CallIDs []string `json:"call_ids"`
	Meta
}

// AgentSoftphoneRequest asks for an agent's softphone binding.
type AgentSoftphoneRequest struct {
	WorkNo int `json:"work_no"`
	ReadOptions
}

// AgentSoftphoneResponse answers AgentSoftphoneRequest. The phone fields come
// from the phone entity whose number equals SIPAccount; PhoneStatus is empty
// when the view knows no such phone.
type AgentSoftphoneResponse struct {
	Tenant          string `json:"tenant"`
	WorkNo          int    `json:"work_no"`
	SIPAccount      string `json:"sip_account,omitempty"`
	AccountCode     string `json:"account_code,omitempty"`
	SIPServerIP     string `json:"sip_server_ip,omitempty"`
	SIPServerPort   int    `json:"sip_server_port,omitempty"`
	PhoneStatus     string `json:"phone_status,omitempty"`
	PhoneStatusCode *int   `json:"phone_status_code,omitempty"`
	Registered      bool   `json:"registered"`
	Meta
}

// AgentStateRequest asks for an agent's CTI state.
type AgentStateRequest struct {
	WorkNo int `json:"work_no"`
	ReadOptions
}

// AgentStateResponse answers AgentStateRequest with the after of the
// agent's last agent.state event, its fields inline. Since is when the
// agent entered the state, so the time in state is the answer's instant
// (now, or as_of.at) minus Since; the answer carries no running duration,
// so that every instance gives the same answer.
//
// Agent state comes only from the CMS sweep: a tenant without a cms block
// has none, and its agents are answered CodeNotFound. The bridge publishes
// no visibility of its own for agent state; Visible is the agent's calls
// visibility, which the same sweep keeps.
type AgentStateResponse struct {
	Tenant string `json:"tenant"`
	WorkNo int    `json:"work_no"`
	AgentState
	Meta
}

// AgentByAccountRequest asks the vendor (through a short-lived cache) which
// agent signs in with Account. MaxAge bounds the cached answer's age.
type AgentByAccountRequest struct {
	Account string `json:"account"`
	MaxAge  string `json:"max_age,omitempty"`
}

// AgentByAccountResponse answers AgentByAccountRequest. Observed is when the
// vendor was asked; Live is true when it was asked for this request.
type AgentByAccountResponse struct {
	Tenant      string    `json:"tenant"`
	Account     string    `json:"account"`
	WorkNo      int       `json:"work_no"`
	AgentType   int       `json:"agent_type"`
	AgentStatus string    `json:"agent_status"`
	StreamSeq   uint64    `json:"stream_seq"`
	Observed    time.Time `json:"observed"`
	Live        bool      `json:"live,omitempty"`
}

// PhoneStateRequest asks for a softphone number's registration state.
type PhoneStateRequest struct {
	PhoneNum string `json:"phone_num"`
	ReadOptions
}

// PhoneStateResponse answers PhoneStateRequest.
type PhoneStateResponse struct {
	Tenant     string `json:"tenant"`
	PhoneNum   string `json:"phone_num"`
	Status     string `json:"status"`
	StatusCode int    `json:"status_code"`
	ConfigID   int64  `json:"config_id,omitempty"`
	Meta
}

// ListRequest is the paging part of the list requests: at most Limit items
// (default 100, at most 1000), starting after the opaque Cursor of a previous
// answer, or skipping Offset matching items when no cursor is given.
type ListRequest struct {
	Limit  int    `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
	Offset int    `json:"offset,omitempty"`
}

// AgentsListRequest lists agents in work number order. The filters are
// optional: InCall keeps agents with (or without) calls, Visible agents the
// bridge can (or cannot) currently observe.
// AsOf lists the agents as they stood at that past instant (see
// ReadOptions); it excludes MinSeq and Wait.
type AgentsListRequest struct {
	ListRequest
	InCall  *bool  `json:"in_call,omitempty"`
	Visible *bool  `json:"visible,omitempty"`
	MinSeq  uint64 `json:"min_seq,omitempty"`
	Wait    string `json:"wait,omitempty"`
	AsOf    string `json:"as_of,omitempty"`
}

// AgentSummary is one agent in an AgentsListResponse.
type AgentSummary struct {
	WorkNo       int        `json:"work_no"`
	CallIDs      []string   `json:"call_ids"`
	InCall       bool       `json:"in_call"`
	SIPAccount   string     `json:"sip_account,omitempty"`
	Visible      bool       `json:"visible"`
	CallsSeq     uint64     `json:"calls_seq"`
	SoftphoneSeq uint64     `json:"softphone_seq"`
	Observed     *time.Time `json:"observed,omitempty"`
}

// AgentsListResponse answers AgentsListRequest. NextCursor is empty on the
// last page.
type AgentsListResponse struct {
	Tenant     string         `json:"tenant"`
	StreamSeq  uint64         `json:"stream_seq"`
	Agents     []AgentSummary `json:"agents"`
	NextCursor string         `json:"next_cursor,omitempty"`
	AsOf       *AsOf          `json:"as_of,omitempty"`
}

// PhonesListRequest lists phones in number order. Registered keeps phones
// whose status is (or is not) registered; Visible those the bridge can (or
// cannot) currently observe.
// AsOf lists them as they stood at that past instant.
type PhonesListRequest struct {
	ListRequest
	Registered *bool  `json:"registered,omitempty"`
	Visible    *bool  `json:"visible,omitempty"`
	MinSeq     uint64 `json:"min_seq,omitempty"`
	Wait       string `json:"wait,omitempty"`
	AsOf       string `json:"as_of,omitempty"`
}

// PhoneSummary is one phone in a PhonesListResponse.
type PhoneSummary struct {
	PhoneNum   string     `json:"phone_num"`
	Status     string     `json:"status"`
	StatusCode int        `json:"status_code"`
	Visible    bool       `json:"visible"`
	Seq        uint64     `json:"seq"`
	Observed   *time.Time `json:"observed,omitempty"`
}

// PhonesListResponse answers PhonesListRequest.
type PhonesListResponse struct {
	Tenant     string         `json:"tenant"`
	StreamSeq  uint64         `json:"stream_seq"`
	Phones     []PhoneSummary `json:"phones"`
	NextCursor string         `json:"next_cursor,omitempty"`
	AsOf       *AsOf          `json:"as_of,omitempty"`
}
