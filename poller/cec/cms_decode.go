package cec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// CMS answers: an envelope whose resultCode "0100000" means success, with
// the payload in resultDesc (resultDatas duplicates it for old versions,
// result is a legacy "0"). The per-agent decoders below take a chunk and
// key every entry by the agentId it carries, never by position: the
// vendor's own sample answers for an agent it was not asked about.

const (
	cmsSuccess      = "0100000"
	cmsCallFailed   = "0100001"
	cmsInvalidParam = "0100002"
	cmsNeedsV3R8    = "0100003"
	cmsUnknownError = "0100999"
	cmsNoPermission = "0101003"
)

type cmsEnvelope struct {
	ResultCode  *flexString     `json:"resultCode"`
	Result      *flexString     `json:"result"`
	ResultDesc  json.RawMessage `json:"resultDesc"`
	ResultDatas json.RawMessage `json:"resultDatas"`
}

// decodeCMS returns the payload of a success answer, a *codeError for a
// failure code, or a shape error.
func decodeCMS(b []byte) (json.RawMessage, error) {
	if !isObject(b) {
		return nil, errShape
	}
	var e cmsEnvelope
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	var code string
	switch {
	case e.ResultCode != nil && *e.ResultCode != "":
		code = string(*e.ResultCode)
	case e.Result != nil && *e.Result == "0":
		code = cmsSuccess
	case e.Result != nil && *e.Result != "":
		code = string(*e.Result)
	default:
		return nil, fmt.Errorf("%w: no resultCode", errShape)
	}
	if code != cmsSuccess {
		var msg flexString
		_ = json.Unmarshal(e.ResultDesc, &msg) // a description only when it is a string
		return nil, &codeError{code: code, msg: string(msg)}
	}
	payload := e.ResultDesc
	if isNull(payload) {
		payload = e.ResultDatas
	}
	if isNull(payload) {
		return nil, fmt.Errorf("%w: no resultDesc", errShape)
	}
	return payload, nil
}

// entries splits a payload that must be a JSON array into its elements, so
// one garbled entry costs only its own agent.
func entries(payload json.RawMessage) ([]json.RawMessage, error) {
	p := bytes.TrimSpace(payload)
	if len(p) == 0 || p[0] != '[' {
		return nil, fmt.Errorf("%w: resultDesc is not a list", errShape)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(p, &list); err != nil {
		return nil, err
	}
	return list, nil
}

// slot collects what an answer said about one agent of the chunk.
type slot[T any] struct {
	n     int // usable entries seen
	value T
	bad   bool // an unusable or conflicting entry: the agent is not observed
}

// keyed matches decoded entries to the chunk's agents. decode returns the
// entry's agentId (0 when it has none) and whether the rest was usable.
func keyed[E, T any](ch Chunk, list []E, decode func(E) (int, T, bool), equal func(a, b T) bool) (agents []T, notObserved []int, ignored int) {
	slots := make([]slot[T], len(ch.Agents))
	for _, raw := range list {
		wn, v, ok := decode(raw)
		i, asked := slices.BinarySearch(ch.Agents, wn)
		if wn == 0 || !asked {
			ignored++
			continue
		}
		s := &slots[i]
		switch {
		case !ok:
			s.bad = true
		case s.n == 0:
			s.value, s.n = v, 1
		case !equal(s.value, v):
			s.bad = true // two different answers for one agent: neither is trusted
		}
	}
	agents = make([]T, 0, len(ch.Agents))
	for i, s := range slots {
		if s.n == 0 || s.bad {
			notObserved = append(notObserved, ch.Agents[i])
			continue
		}
		agents = append(agents, s.value)
	}
	return agents, notObserved, ignored
}

// agentID reads a work number; out-of-range values count as absent.
func agentID(n flexInt) int {
	if !n.Set || n.V < 101 || n.V > 999999 {
		return 0
	}
	return int(n.V)
}

// ---- agentgroup/queryagentcalls ----

type agentCallsWire struct {
	AgentID  flexInt     `json:"agentId"`
	CallList *[]callWire `json:"callList"`
}

type callWire struct {
	CallID     flexString `json:"callId"`
	CallStatus flexInt    `json:"callStatus"`
	CallInOut  flexInt    `json:"callInOut"`
	MediaType  flexInt    `json:"mediaType"`
}

func decodeAgentCallsEntry(raw json.RawMessage) (int, AgentCalls, bool) {
	var w agentCallsWire
	if !isObject(raw) || json.Unmarshal(raw, &w) != nil {
		return brokenEntryAgent(raw), AgentCalls{}, false
	}
	return w.agentCalls()
}

// brokenEntryAgent learns whose entry an undecodable one was, so that agent
// is marked not observed rather than silently described by nothing.
func brokenEntryAgent(raw json.RawMessage) int {
	var id struct {
		AgentID flexInt `json:"agentId"`
	}
	_ = json.Unmarshal(raw, &id)
	return agentID(id.AgentID)
}

func (w *agentCallsWire) agentCalls() (int, AgentCalls, bool) {
	wn := agentID(w.AgentID)
	// An entry without callList says nothing about calls: "no call" is an
	// empty list, never an absent one.
	if w.CallList == nil {
		return wn, AgentCalls{}, false
	}
	calls := make([]Call, 0, len(*w.CallList))
	for _, c := range *w.CallList {
		id := strings.TrimSpace(string(c.CallID))
		if id == "" {
			return wn, AgentCalls{}, false
		}
		call := Call{ID: id, Status: CallStatusUnknown, MediaType: c.MediaType.Int()}
		if c.CallStatus.Set && c.CallStatus.V >= 0 && c.CallStatus.V <= int64(CallThreeWay) {
			call.Status = CallStatus(c.CallStatus.V)
		}
		if c.CallInOut.Set {
			switch c.CallInOut.V {
			case 0:
				call.Direction = DirectionInbound
			case 1:
				call.Direction = DirectionOutbound
			}
		}
		calls = append(calls, call)
	}
	slices.SortStableFunc(calls, func(a, b Call) int { return strings.Compare(a.ID, b.ID) })
	calls = slices.CompactFunc(calls, func(a, b Call) bool { return a.ID == b.ID })
	return wn, AgentCalls{WorkNo: wn, Calls: calls}, true
}

func sameCalls(a, b AgentCalls) bool { return slices.Equal(a.Calls, b.Calls) }

func decodeAgentCalls(payload json.RawMessage, ch Chunk) (*CallsAnswer, error) {
	var agents []AgentCalls
	var missing []int
	var ignored int
	// The whole list in one pass when every entry is well formed (the
	// usual case, and the hot one); entry by entry otherwise, so a garbled
	// entry costs only its own agent.
	var wire []agentCallsWire
	if p := bytes.TrimSpace(payload); len(p) > 0 && p[0] == '[' && json.Unmarshal(p, &wire) == nil {
		agents, missing, ignored = keyed(ch, wire, agentCallsWire.entry, sameCalls)
	} else {
		list, err := entries(payload)
		if err != nil {
			return nil, err
		}
		agents, missing, ignored = keyed(ch, list, decodeAgentCallsEntry, sameCalls)
	}
	return &CallsAnswer{Observation: Observation{Chunk: ch, NotObserved: missing, Ignored: ignored}, Agents: agents}, nil
}

func (w agentCallsWire) entry() (int, AgentCalls, bool) { return w.agentCalls() }

// ---- agentgroup/agentstatusinfobyagentids ----

type agentStateWire struct {
	AgentID               flexInt    `json:"agentId"`
	CurrentState          flexInt    `json:"currentState"`
	CurrentStateTime      flexInt    `json:"currentStateTime"`
	PrevState             flexInt    `json:"prevState"`
	PrevStateTime         flexInt    `json:"prevStateTime"`
	CurrentStateReason    flexInt    `json:"currentStateReason"`
	LogonTime             flexInt    `json:"logonTime"`
	LocationID            flexString `json:"locationId"`
	AgentRelease          flexString `json:"agentRelease"`
	CurrentPrivateCallNum flexInt    `json:"currentPrivateCallNum"`
}

func stateCode(n flexInt) AgentStateCode {
	if !n.Set || n.V < 0 || n.V > int64(maxAgentStateCode) {
		return AgentStateUnknown
	}
	return AgentStateCode(n.V)
}

func seconds(n flexInt) time.Duration {
	if !n.Set || n.V < 0 || n.V > 100*365*86400 {
		return 0
	}
	return time.Duration(n.V) * time.Second
}

func decodeAgentStateEntry(raw json.RawMessage) (int, AgentState, bool) {
	var w agentStateWire
	if !isObject(raw) || json.Unmarshal(raw, &w) != nil {
		return brokenEntryAgent(raw), AgentState{}, false
	}
	return w.entry()
}

func (w agentStateWire) entry() (int, AgentState, bool) {
	wn := agentID(w.AgentID)
	if !w.CurrentState.Set {
		return wn, AgentState{}, false
	}
	st := AgentState{
		WorkNo: wn, State: stateCode(w.CurrentState), InState: seconds(w.CurrentStateTime),
		PrevState: stateCode(w.PrevState), PrevInState: seconds(w.PrevStateTime),
		Reason: w.CurrentStateReason.Int(), LocationID: string(w.LocationID),
		AgentRelease: string(w.AgentRelease), PrivateCalls: w.CurrentPrivateCallNum.Int(),
	}
	if w.LogonTime.Set && w.LogonTime.V > 0 && w.LogonTime.V < notSignedInLogonMilli {
		st.SignedInAt = time.UnixMilli(w.LogonTime.V)
	}
	return wn, st, true
}

func sameState(a, b AgentState) bool { return a == b }

func decodeAgentStates(payload json.RawMessage, ch Chunk) (*StatesAnswer, error) {
	list, err := entries(payload)
	if err != nil {
		return nil, err
	}
	agents, missing, ignored := keyed(ch, list, decodeAgentStateEntry, sameState)
	return &StatesAnswer{Observation: Observation{Chunk: ch, NotObserved: missing, Ignored: ignored}, Agents: agents}, nil
}

// ---- vdn/totalagentstate ----

type presenceWire struct {
	AgentID flexInt `json:"agentId"`
	State   flexInt `json:"state"`
}

func decodeTotalAgentState(payload json.RawMessage, vdn int) (*VDNStates, error) {
	list, err := entries(payload)
	if err != nil {
		return nil, err
	}
	out := &VDNStates{VDN: vdn, Agents: make([]AgentPresence, 0, len(list))}
	for _, raw := range list {
		var w presenceWire
		if !isObject(raw) || json.Unmarshal(raw, &w) != nil || agentID(w.AgentID) == 0 || !w.State.Set {
			out.Ignored++
			continue
		}
		out.Agents = append(out.Agents, AgentPresence{WorkNo: agentID(w.AgentID), State: stateCode(w.State)})
	}
	slices.SortStableFunc(out.Agents, func(a, b AgentPresence) int { return a.WorkNo - b.WorkNo })
	// An agent listed twice with different states is dropped: neither
	// entry can be trusted.
	kept := out.Agents[:0]
	for i := 0; i < len(out.Agents); {
		j := i + 1
		conflict := false
		for j < len(out.Agents) && out.Agents[j].WorkNo == out.Agents[i].WorkNo {
			conflict = conflict || out.Agents[j].State != out.Agents[i].State
			j++
		}
		if conflict {
			out.Ignored += j - i
		} else {
			kept = append(kept, out.Agents[i])
			out.Ignored += j - i - 1
		}
		i = j
	}
	out.Agents = kept
	return out, nil
}
