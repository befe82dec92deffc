package cec

import (
	"encoding/json"
	"time"
)

// AgentInfo is the queryAgentInfo answer: the SIP server and every agent's
// softphone binding.
type AgentInfo struct {
	SIPServerIP   string
	SIPServerPort int
	Agents        []AgentSoftphone
}

// AgentSoftphone is one agent's softphone binding.
type AgentSoftphone struct {
	WorkNo      int
	SIPAccount  string
	SIPPassword Secret
	AccountCode string // "" when the agent has no business account
}

// PhonePage is one queryPhone page.
type PhonePage struct {
	Total      int
	Phones     []Phone
	RegServers []RegServer
}

// Phone is one allocated softphone number.
type Phone struct {
	PhoneNum string
	Password Secret
	ID       int64
	Status   int // 0 registered, 1 suspended
	Remark   string
	TenantID string
	PartDBID string
}

// RegServer is a softphone registration address. Pool is "single", "node1",
// "node2", or "" for the flattened form some responses use.
type RegServer struct {
	Pool           string
	RegIP          string
	RegPort        int
	SIPServiceIP   string
	SIPServicePort int
}

// AgentAccount is the queryAgentInfoByAccount answer.
type AgentAccount struct {
	WorkNo      int
	AgentType   int
	AgentStatus string
}

// AgentStatus is the gateway's view of the session's own agent.
type AgentStatus struct {
	AgentState int // gateway codes: 2 signed out, 3 busy, 4 idle, 5 wrap-up, 7 talking, 8 rest ...
	IsWorking  bool
}

// CallInfo is the callinfobycallid answer. Absent fields are zero values.
type CallInfo struct {
	CallID        string
	CallFeature   int
	Caller        string
	Called        string
	CallSkill     string
	CallSkillID   int
	OrigCalledNum string
	CallData      string
	BeginTime     time.Time
	EndTime       time.Time
	UserPriority  int
	TrunkNo       int
	LogonTimes    int
	MediaType     int
	MediaAbility  int
	WaitTime      int64
}

// AgentEvent is one event from the agent's event queue. Content is the raw
// vendor payload (an object, a bare string such as a call ID, or null).
type AgentEvent struct {
	Type    string
	WorkNo  string
	Content json.RawMessage
	GenTime time.Time // zero when the gateway did not send eventGenTime
}

// SessionState is the lifecycle state of a gateway Session.
type SessionState int32

// Session states.
const (
	SignedOut SessionState = iota
	SigningIn
	Ready
	Lost
)

func (s SessionState) String() string {
	switch s {
	case SignedOut:
		return "signed_out"
	case SigningIn:
		return "signing_in"
	case Ready:
		return "ready"
	case Lost:
		return "lost"
	}
	return "unknown"
}
