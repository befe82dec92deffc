package cec

import (
	"slices"
	"time"
)

// CallStatus is a call's status as CMS reports it (callStatus). The values
// are the vendor's codes; CallStatusUnknown stands for an answer without one.
type CallStatus int8

// The call statuses. A call in CallAlerting is ringing at the agent: the
// earliest moment a screen-pop can know of it.
const (
	CallStatusUnknown CallStatus = -1
	CallIdle          CallStatus = 0
	CallOccupied      CallStatus = 1
	CallQueued        CallStatus = 2
	CallPrivateQueued CallStatus = 3
	CallAlerting      CallStatus = 4
	CallTalking       CallStatus = 5
	CallHeld          CallStatus = 6
	CallSuspended     CallStatus = 7
	CallMuted         CallStatus = 8
	CallThreeWay      CallStatus = 9
)

var callStatusNames = [...]string{
	"idle", "occupied", "queued", "private_queued", "alerting",
	"talking", "held", "suspended", "muted", "three_way",
}

// String returns the snake_case name events carry ("alerting", "talking",
// ...), or "unknown".
func (s CallStatus) String() string { return nameOf(callStatusNames[:], int(s)) }

// CallDirection says whether a call came in or went out (callInOut).
type CallDirection int8

// The directions. The vendor sends 0 for inbound and 1 for outbound.
const (
	DirectionUnknown CallDirection = iota
	DirectionInbound
	DirectionOutbound
)

// String returns "inbound", "outbound" or "unknown".
func (d CallDirection) String() string {
	switch d {
	case DirectionInbound:
		return "inbound"
	case DirectionOutbound:
		return "outbound"
	}
	return "unknown"
}

// AgentStateCode is a CTI agent state as CMS reports it (currentState).
type AgentStateCode int8

// The CTI agent states. AgentStateUnknown stands for an absent or
// unrecognised value.
const (
	AgentStateUnknown     AgentStateCode = -1
	AgentNotSignedIn      AgentStateCode = 0
	AgentIdle             AgentStateCode = 1
	AgentPreOccupied      AgentStateCode = 2
	AgentOccupied         AgentStateCode = 3
	AgentAnswering        AgentStateCode = 4
	AgentTalking          AgentStateCode = 5
	AgentWrapUp           AgentStateCode = 6
	AgentBusy             AgentStateCode = 7
	AgentResting          AgentStateCode = 8
	AgentStudying         AgentStateCode = 9
	AgentAdjusting        AgentStateCode = 10
	maxAgentStateCode                    = AgentAdjusting
	notSignedInLogonMilli                = 4294967295000 // logonTime of an agent not signed in
)

var agentStateNames = [...]string{
	"not_signed_in", "idle", "pre_occupied", "occupied", "answering",
	"talking", "wrap_up", "busy", "resting", "studying", "adjusting",
}

// String returns the snake_case name events carry, or "unknown".
func (s AgentStateCode) String() string { return nameOf(agentStateNames[:], int(s)) }

func nameOf(names []string, code int) string {
	if code >= 0 && code < len(names) {
		return names[code]
	}
	return "unknown"
}

// Call is one call CMS reports for an agent.
type Call struct {
	ID        string // the gateway's call ID format, e.g. "1605494261-1449"
	Status    CallStatus
	Direction CallDirection
	MediaType int // vendor media type code, 0 when absent
}

// AgentCalls is one agent's calls in a queryagentcalls answer. An agent
// without calls has an empty, non-nil Calls.
type AgentCalls struct {
	WorkNo int
	Calls  []Call // sorted by ID, one entry per ID
}

// CallIDs returns the agent's call IDs, sorted: the same fact
// Session.AllCallInfo reports.
func (a AgentCalls) CallIDs() []string {
	ids := make([]string, len(a.Calls))
	for i, c := range a.Calls {
		ids[i] = c.ID
	}
	return ids
}

// AgentState is one agent's state in an agentstatusinfobyagentids answer.
type AgentState struct {
	WorkNo       int
	State        AgentStateCode
	InState      time.Duration // time in State, to the second, as of the answer
	PrevState    AgentStateCode
	PrevInState  time.Duration // how long PrevState lasted
	Reason       int           // currentStateReason (rest or busy reason code)
	SignedInAt   time.Time     // logonTime; zero when not signed in
	LocationID   string
	AgentRelease string
	PrivateCalls int // currentPrivateCallNum
}

// AgentPresence is one agent's state in a totalagentstate answer.
type AgentPresence struct {
	WorkNo int
	State  AgentStateCode
}

// Chunk is the agents of one CMS request: all in one VDN, at most the
// interface's limit, sorted and unique. Build chunks with [CMS.Plan].
type Chunk struct {
	VDN    int
	Agents []int
}

// Observation is what a chunk's answer says about coverage. Every agent of
// Chunk is either described by the answer (and listed in the answer's
// Agents) or in NotObserved, never both: an agent the answer leaves out is
// not observed, which is not the same as having no call.
type Observation struct {
	Chunk       Chunk
	NotObserved []int // agents of Chunk the answer did not describe, or described unusably
	Ignored     int   // answer entries about agents not asked for, or without a usable agentId
	Timing
}

// Timing says when a request went out (after its budget wait) and when its
// answer was in: the bracket of a sweep's observation.
type Timing struct {
	Sent     time.Time
	Received time.Time
}

func (t *Timing) stamp(sent, received time.Time) { t.Sent, t.Received = sent, received }

// CallsAnswer is a queryagentcalls answer for one chunk.
type CallsAnswer struct {
	Observation
	Agents []AgentCalls // sorted by WorkNo
}

// Agent returns the answer for one agent; ok is false when the agent was
// not observed.
func (a *CallsAnswer) Agent(workNo int) (AgentCalls, bool) {
	return findAgent(a.Agents, workNo, func(v AgentCalls) int { return v.WorkNo })
}

// StatesAnswer is an agentstatusinfobyagentids answer for one chunk.
type StatesAnswer struct {
	Observation
	Agents []AgentState // sorted by WorkNo
}

// Agent returns the answer for one agent; ok is false when the agent was
// not observed.
func (a *StatesAnswer) Agent(workNo int) (AgentState, bool) {
	return findAgent(a.Agents, workNo, func(v AgentState) int { return v.WorkNo })
}

// VDNStates is a totalagentstate answer: every agent of one VDN CMS knows.
type VDNStates struct {
	VDN     int
	Agents  []AgentPresence // sorted by WorkNo
	Ignored int             // entries without a usable agentId or state, or repeated with another state
	Timing
}

func findAgent[T any](list []T, workNo int, key func(T) int) (T, bool) {
	i, ok := slices.BinarySearchFunc(list, workNo, func(v T, n int) int { return key(v) - n })
	if !ok {
		var zero T
		return zero, false
	}
	return list[i], true
}
