package schemas

import (
	"strconv"
	"time"
)

// Agent aspects: the last token of an agent subject.
const (
	AspectCalls     = "calls"     // call IDs (agent.calls.v1)
	AspectCallsV2   = "calls_v2"  // calls with status and direction (agent.calls.v2)
	AspectSoftphone = "softphone" // softphone binding (agent.softphone.v1)
	AspectState     = "state"     // CTI agent state (agent.state.v1); also the phone aspect
)

// Richer facts from the CC-CMS sweep.
const (
	TypeAgentCallsV2 = "io.cecbridge.agent.calls.v2"
	TypeAgentState   = "io.cecbridge.agent.state.v1"
)

// Sources of an observation, in Detected.Source.
const (
	SourceCMS     = "cms"     // a CC-CMS sweep (queryagentcalls, agentstatusinfobyagentids)
	SourceGateway = "gateway" // a CC-Gateway query (allcallinfoEx)
)

// Unknown is the status, direction or state of a fact its source did not
// give (allcallinfoEx has no call status), or gave with a value outside the
// vendor's documented set.
const Unknown = "unknown"

// Call directions.
const (
	DirectionInbound  = "inbound"
	DirectionOutbound = "outbound"
)

// AgentCallsV2 is one agent's calls with each call's status and direction:
// the payload of agent.calls.v2 on the calls_v2 aspect. CallIDs holds the
// sorted IDs of Calls, the same field agent.calls.v1 carries, so moving
// from v1 to v2 changes nothing for a consumer that reads only the IDs.
//
// The v1 schema is closed (additionalProperties false), so the statuses
// could not be added to it: v2 is a separate type on its own subject,
// published beside v1, with its own seq. A v2 history changes when a call
// starts, ends or changes status; v1 only when the set of IDs changes.
type AgentCallsV2 struct {
	CallIDs []string `json:"call_ids"`
	Calls   []Call   `json:"calls"`
}

// Call is one call in AgentCallsV2. Status is the CMS callStatus by name
// ("alerting", "talking", "held", ...; "unknown" when the source had none);
// a call in "alerting" is ringing at the agent, the earliest moment a
// screen-pop can know of it. Direction is "inbound", "outbound" or
// "unknown".
type Call struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Direction string `json:"direction"`
	MediaType int    `json:"media_type,omitempty"`
}

// AgentState is one agent's CTI state from agentstatusinfobyagentids: the
// payload of agent.state.v1. State is the state by name and StateCode the
// vendor's code (0 not signed in, 1 idle, 4 answering, 5 talking, 6 wrap-up,
// 7 busy, 8 resting, ...; -1 unknown).
//
// CMS reports time in state, which grows with every look; the event carries
// Since instead, when the state began: the observation time minus the time
// in state, to the second. A publisher treats a new StateCode, or a state
// that provably began after the published Since (it was left and
// re-entered between two looks), as a change; Since moving by a second of
// rounding, or by a slow answer, is not one.
type AgentState struct {
	State      string     `json:"state"`
	StateCode  int        `json:"state_code"`
	Since      time.Time  `json:"since"`
	PrevState  string     `json:"prev_state,omitempty"` // the state before, as CMS reports it
	Reason     int        `json:"reason,omitempty"`     // rest or busy reason code
	SignedInAt *time.Time `json:"signed_in_at,omitempty"`
}

// AgentCallsV2Subject is the subject of an agent's calls_v2 events.
func AgentCallsV2Subject(tenant string, workNo int) string {
	return agentSubject(tenant, workNo, AspectCallsV2)
}

// AgentStateSubject is the subject of an agent's state events.
func AgentStateSubject(tenant string, workNo int) string {
	return agentSubject(tenant, workNo, AspectState)
}

func agentSubject(tenant string, workNo int, aspect string) string {
	return EventPrefix + "." + tenant + ".agent." + strconv.Itoa(workNo) + "." + aspect
}

// EventType returns the event type published on a parsed subject, or ""
// for a subject outside the scheme's known aspects.
func (p ParsedSubject) EventType() string { return p.Kind.EventType() }
