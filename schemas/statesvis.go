package schemas

import "time"

// TypeBridgeStatesVisibility is the type of the bridge's picture of which
// agents' states it cannot observe (tenants with CMS), on the subject
// BridgeSubject(tenant, BridgeStatesVisibility).
const TypeBridgeStatesVisibility = "io.cecbridge.bridge.states_visibility.v1"

// StatesVisibility is the payload of a bridge.states_visibility event:
// every agent whose state (agent.state, which only the CMS sweep observes)
// the bridge cannot observe now, while per-agent polling may still keep
// the agent's calls visible.
//
// It is a fact of its own, not a scope of bridge.visibility: that schema is
// closed, so it cannot gain a scope. Each event is the whole picture, not a
// transition, so a reader that starts late needs only the last one, which
// the state stream keeps. The bridge emits one when the picture changes and
// one at the start of every term, which corrects a picture the previous
// term left behind.
type StatesVisibility struct {
	Seq    uint64 `json:"seq"`
	PrevID string `json:"prev_id,omitempty"`
	Tenant string `json:"tenant"`
	// NotVisible lists the agents as work-number ranges ("101-180,200");
	// empty, and so absent, when every agent's state is observed.
	NotVisible string    `json:"not_visible,omitempty"`
	Count      int       `json:"count"`
	Since      time.Time `json:"since"`            // when the picture last changed
	Reason     string    `json:"reason,omitempty"` // why the latest loss (cec.Reason); absent when none is lost
}
