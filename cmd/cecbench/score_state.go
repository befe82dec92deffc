package main

import (
	"strconv"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// The truth of agent.state: the simulator records sign-ins and calls, not
// agent states, so the scoring derives each agent's CTI state from them the
// way the simulated CMS does (not signed in, idle, answering while its only
// calls ring, talking once one is answered or held).

// CTI state codes the simulated CMS reports (reference/cec-cms.md).
const (
	ctiNotSignedIn = 0
	ctiIdle        = 1
	ctiAnswering   = 4
	ctiTalking     = 5
)

// kindAgentState names the derived truth changes of agent states.
const kindAgentState = "agent_state"

// stateTruth follows every agent's state through the truth.
type stateTruth struct {
	agents map[int]*agentStateTruth
}

type agentStateTruth struct {
	signed bool
	calls  map[string]string // call ID -> status
	state  int
	// unknown: the truth named a call this agent held before it began,
	// so its state cannot be derived; it has no state facts.
	unknown bool
}

// newStateTruth starts from the agents signed in when the truth begins,
// none of them in a call.
func newStateTruth(signedIn map[int]bool) *stateTruth {
	st := &stateTruth{agents: make(map[int]*agentStateTruth, len(signedIn))}
	for wn, ok := range signedIn {
		if ok {
			st.agents[wn] = &agentStateTruth{signed: true, state: ctiIdle}
		}
	}
	return st
}

func (st *stateTruth) agent(wn int) *agentStateTruth {
	a := st.agents[wn]
	if a == nil {
		a = &agentStateTruth{state: ctiNotSignedIn}
		st.agents[wn] = a
	}
	return a
}

// apply takes one truth change; when it moved the agent to another state,
// it returns that as a change of its own (Kind kindAgentState, Before and
// After the state codes). A nil stateTruth derives nothing.
func (st *stateTruth) apply(c cecsim.Change) (cecsim.Change, bool) {
	if st == nil {
		return cecsim.Change{}, false
	}
	a := st.agent(c.WorkNo)
	switch c.Kind {
	case cecsim.KindSignedIn:
		a.signed = true
	case cecsim.KindSignedOut:
		a.signed, a.calls = false, nil
	case cecsim.KindCallAdded:
		if a.calls == nil {
			a.calls = map[string]string{}
		}
		a.calls[c.CallID] = c.After
	case cecsim.KindCallStatus, cecsim.KindCallRemoved:
		if _, ok := a.calls[c.CallID]; !ok {
			a.unknown = true
			return cecsim.Change{}, false
		}
		if c.Kind == cecsim.KindCallRemoved {
			delete(a.calls, c.CallID)
		} else {
			a.calls[c.CallID] = c.After
		}
	case cecsim.KindAgentRemoved:
		delete(st.agents, c.WorkNo)
		return cecsim.Change{}, false
	default:
		return cecsim.Change{}, false
	}
	next := a.derive()
	if next == a.state || a.unknown {
		a.state = next
		return cecsim.Change{}, false
	}
	before := a.state
	a.state = next
	return cecsim.Change{Seq: c.Seq, At: c.At, Kind: kindAgentState, WorkNo: c.WorkNo,
		Before: strconv.Itoa(before), After: strconv.Itoa(next)}, true
}

// derive is the agent's state from presence and calls.
func (a *agentStateTruth) derive() int {
	if !a.signed {
		return ctiNotSignedIn
	}
	ringing := false
	for _, status := range a.calls {
		if status != cecsim.CallAlerting.String() {
			return ctiTalking
		}
		ringing = true
	}
	if ringing {
		return ctiAnswering
	}
	return ctiIdle
}

// stateEntity names an agent's state entity for the scoring.
func stateEntity(workNo int) string { return "g" + strconv.Itoa(workNo) }
