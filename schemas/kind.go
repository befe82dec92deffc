package schemas

// Kind is what an event subject carries: one aspect of an entity, or one
// kind of the bridge's own events. Code that handles events by what they
// are (restoring state, applying them to a view) switches on it.
type Kind int

// The kinds of event subjects.
const (
	KindUnknown Kind = iota
	KindAgentCalls
	KindAgentCallsV2
	KindAgentSoftphone
	KindAgentState
	KindPhoneState
	KindBridgeVisibility
	KindBridgeHeartbeat
	KindBridgeStatesVisibility
)

var kindTypes = map[Kind]string{
	KindAgentCalls:             TypeAgentCalls,
	KindAgentCallsV2:           TypeAgentCallsV2,
	KindAgentSoftphone:         TypeAgentSoftphone,
	KindAgentState:             TypeAgentState,
	KindPhoneState:             TypePhoneState,
	KindBridgeVisibility:       TypeBridgeVisibility,
	KindBridgeHeartbeat:        TypeBridgeHeartbeat,
	KindBridgeStatesVisibility: TypeBridgeStatesVisibility,
}

// EventType is the CloudEvent type of the kind's events ("" if unknown).
func (k Kind) EventType() string { return kindTypes[k] }

// typeKinds is kindTypes the other way round.
var typeKinds = func() map[string]Kind {
	m := make(map[string]Kind, len(kindTypes))
	for k, t := range kindTypes {
		m[t] = k
	}
	return m
}()

// KindOfType is the kind of an event type (KindUnknown if none).
func KindOfType(eventType string) Kind { return typeKinds[eventType] }

// kindOf names the kind of a parsed subject from its entity and aspect.
func kindOf(entity, aspect string) Kind {
	switch {
	case entity == "agent" && aspect == AspectCalls:
		return KindAgentCalls
	case entity == "agent" && aspect == AspectCallsV2:
		return KindAgentCallsV2
	case entity == "agent" && aspect == AspectSoftphone:
		return KindAgentSoftphone
	case entity == "agent" && aspect == AspectState:
		return KindAgentState
	case entity == "phone" && aspect == AspectState:
		return KindPhoneState
	case entity == "bridge" && aspect == BridgeVisibility:
		return KindBridgeVisibility
	case entity == "bridge" && aspect == BridgeHeartbeat:
		return KindBridgeHeartbeat
	case entity == "bridge" && aspect == BridgeStatesVisibility:
		return KindBridgeStatesVisibility
	}
	return KindUnknown
}
