package cecsim

import (
	"fmt"
	"slices"
)

// CallStatus is a call's status with CMS's callStatus code. The simulator
// moves calls through alerting, talking and held; a release removes the
// call.
type CallStatus int8

// The modelled call statuses.
const (
	CallAlerting CallStatus = 4
	CallTalking  CallStatus = 5
	CallHeld     CallStatus = 6
)

// String names the status as the ground truth records it.
func (c CallStatus) String() string {
	switch c {
	case CallAlerting:
		return "alerting"
	case CallTalking:
		return "talking"
	case CallHeld:
		return "held"
	}
	return fmt.Sprintf("CallStatus(%d)", int(c))
}

// ParseCallStatus reverses String.
func ParseCallStatus(name string) (CallStatus, error) {
	for _, st := range []CallStatus{CallAlerting, CallTalking, CallHeld} {
		if st.String() == name {
			return st, nil
		}
	}
	return 0, fmt.Errorf("%w: call status %q (alerting, talking or held)", ErrBadValue, name)
}

// Direction is a call's direction with CMS's callInOut code.
type Direction int8

// The directions.
const (
	Inbound  Direction = 0
	Outbound Direction = 1
)

// String returns "inbound" or "outbound".
func (d Direction) String() string {
	if d == Outbound {
		return "outbound"
	}
	return "inbound"
}

// ParseDirection reverses String; "" is inbound.
func ParseDirection(name string) (Direction, error) {
	switch name {
	case "", "inbound":
		return Inbound, nil
	case "outbound":
		return Outbound, nil
	}
	return 0, fmt.Errorf("%w: direction %q (inbound or outbound)", ErrBadValue, name)
}

// CTI agent states the simulator derives (CMS currentState).
const (
	stateNotSignedIn int8 = 0
	stateIdle        int8 = 1
	stateAnswering   int8 = 4
	stateTalking     int8 = 5
)

// agentStateOf derives the CTI agent state from presence and calls: an
// agent on a call it answered is talking, one whose only calls ring is
// answering.
func agentStateOf(signedIn bool, calls []CallStatus) int8 {
	switch {
	case !signedIn:
		return stateNotSignedIn
	case slices.ContainsFunc(calls, func(c CallStatus) bool { return c != CallAlerting }):
		return stateTalking
	case len(calls) > 0:
		return stateAnswering
	}
	return stateIdle
}

// setCallStatusLocked moves a call to st and records the change.
func (s *Sim) setCallStatusLocked(c *call, st CallStatus) {
	if c.status == st {
		return
	}
	before := c.status
	c.status = st
	s.record(Change{Kind: KindCallStatus, WorkNo: int(c.workNo), CallID: c.id, Before: before.String(), After: st.String()})
}

// StartCallWith is StartCall with the first status and the direction
// chosen.
func (s *Sim) StartCallWith(workNo int, st CallStatus, dir Direction) (string, error) {
	if _, err := ParseCallStatus(st.String()); err != nil {
		return "", err
	}
	if dir != Inbound && dir != Outbound {
		return "", fmt.Errorf("%w: direction %d", ErrBadValue, dir)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.agentLocked(workNo)
	if err != nil {
		return "", err
	}
	if a.signedIdx < 0 {
		return "", fmt.Errorf("%w: %d", ErrNotSignedIn, workNo)
	}
	return s.startCallLocked(a, st, dir), nil
}

// SetCallStatus moves one of the agent's calls to st (answering it, putting
// it on hold, taking it back).
func (s *Sim) SetCallStatus(workNo int, callID string, st CallStatus) error {
	if _, err := ParseCallStatus(st.String()); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[callID]
	if c == nil || int(c.workNo) != workNo {
		return fmt.Errorf("%w %q for agent %d", ErrUnknownCall, callID, workNo)
	}
	s.setCallStatusLocked(c, st)
	return nil
}
