package cec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// CC-Gateway decoders: the envelope of every answer, call IDs, events,
// the agent's status and call details (see decode.go for the rules).

// gwEnvelope is the envelope of every CC-Gateway answer.
type gwEnvelope struct {
	Message flexString      `json:"message"`
	Msg     flexString      `json:"msg"` // older samples
	Retcode *flexString     `json:"retcode"`
	Result  json.RawMessage `json:"result"`
	Event   json.RawMessage `json:"event"`
}

func (e *gwEnvelope) message() string {
	if e.Message != "" {
		return string(e.Message)
	}
	return string(e.Msg)
}

func (e *gwEnvelope) code() string {
	if e.Retcode == nil {
		return ""
	}
	return string(*e.Retcode)
}

func decodeGateway(b []byte) (*gwEnvelope, error) {
	if !isObject(b) {
		return nil, errShape
	}
	var e gwEnvelope
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	if e.Retcode == nil || *e.Retcode == "" {
		return nil, fmt.Errorf("%w: no retcode", errShape)
	}
	return &e, nil
}

// decodeCallIDs decodes an allcallinfoEx result: absent or null means the
// agent has no call; otherwise it must be an array of call IDs. The IDs come
// back sorted and de-duplicated.
func decodeCallIDs(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return []string{}, nil
	}
	ids, ok := scanStringArray(raw)
	if !ok {
		var loose []flexString
		if err := json.Unmarshal(raw, &loose); err != nil {
			return nil, fmt.Errorf("%w: result is not a list of call IDs", errShape)
		}
		ids = make([]string, 0, len(loose))
		for _, s := range loose {
			ids = append(ids, string(s))
		}
	}
	for _, id := range ids {
		if id == "" {
			return nil, fmt.Errorf("%w: empty call ID", errShape)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// scanStringArray is the fast path for the hot allcallinfoEx answer: a flat
// array of plain strings without escapes. Anything else reports !ok and the
// caller falls back to encoding/json.
func scanStringArray(b []byte) ([]string, bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	out := []string{}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return out, skipWS(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, false
		}
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' || b[j] < 0x20 {
				return nil, false
			}
			j++
		}
		if j >= len(b) {
			return nil, false
		}
		out = append(out, string(b[i+1:j]))
		i = skipWS(b, j+1)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return out, skipWS(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

type eventWire struct {
	EventType    flexString      `json:"eventType"`
	WorkNo       flexString      `json:"workNo"`
	Content      json.RawMessage `json:"content"`
	EventGenTime flexInt         `json:"eventGenTime"`
}

// decodeEvent decodes the event member of a poll answer. ok is false for an
// empty poll, which the gateway may express as no member, null or {}.
func decodeEvent(raw json.RawMessage) (ev AgentEvent, ok bool, err error) {
	if isNull(raw) {
		return AgentEvent{}, false, nil
	}
	if !isObject(raw) {
		return AgentEvent{}, false, fmt.Errorf("%w: event is not an object", errShape)
	}
	var w eventWire
	if err := json.Unmarshal(raw, &w); err != nil {
		return AgentEvent{}, false, err
	}
	if w.EventType == "" {
		return AgentEvent{}, false, nil
	}
	ev = AgentEvent{Type: string(w.EventType), WorkNo: string(w.WorkNo)}
	if len(w.Content) > 0 {
		ev.Content = append(json.RawMessage(nil), w.Content...)
	}
	if w.EventGenTime.Set && w.EventGenTime.V > 0 {
		ev.GenTime = time.UnixMilli(w.EventGenTime.V)
	}
	return ev, true, nil
}

// firstObject accepts a result documented as an array but sampled as an
// object: either shape yields the object.
func firstObject(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(raw, &arr); err != nil {
			return nil, err
		}
		if len(arr) == 0 {
			return nil, fmt.Errorf("%w: empty result", errShape)
		}
		raw = bytes.TrimSpace(arr[0])
	}
	if !isObject(raw) {
		return nil, fmt.Errorf("%w: result is not an object", errShape)
	}
	return raw, nil
}

type agentStatusWire struct {
	AgentState flexInt  `json:"agentState"`
	IsWorking  flexBool `json:"isWorking"`
}

func decodeAgentStatus(raw json.RawMessage) (*AgentStatus, error) {
	obj, err := firstObject(raw)
	if err != nil {
		return nil, err
	}
	var w agentStatusWire
	if err := json.Unmarshal(obj, &w); err != nil {
		return nil, err
	}
	if !w.AgentState.Set {
		return nil, fmt.Errorf("%w: no agentState", errShape)
	}
	return &AgentStatus{AgentState: w.AgentState.Int(), IsWorking: bool(w.IsWorking)}, nil
}

type callInfoWire struct {
	CallFeature   flexInt    `json:"callfeature"`
	CallID        flexString `json:"callid"`
	Caller        flexString `json:"caller"`
	Called        flexString `json:"called"`
	CallSkill     flexString `json:"callskill"`
	CallSkillID   flexInt    `json:"callskillid"`
	OrigCalledNum flexString `json:"orgicallednum"`
	CallData      flexString `json:"calldata"`
	BeginTime     flexInt    `json:"begintime"`
	EndTime       flexInt    `json:"endtime"`
	UserPriority  flexInt    `json:"userPriority"`
	TrunkNo       flexInt    `json:"trunkNo"`
	LogonTimes    flexInt    `json:"logontimes"`
	MediaType     flexInt    `json:"mediaType"`
	MediaAbility  flexInt    `json:"mediaAbility"`
	WaitTime      flexInt    `json:"waitTime"`
}

func msTime(n flexInt) time.Time {
	if !n.Set || n.V <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n.V)
}

func decodeCallInfo(raw json.RawMessage) (*CallInfo, error) {
	obj, err := firstObject(raw)
	if err != nil {
		return nil, err
	}
	var w callInfoWire
	if err := json.Unmarshal(obj, &w); err != nil {
		return nil, err
	}
	return &CallInfo{
		CallID: string(w.CallID), CallFeature: w.CallFeature.Int(),
		Caller: string(w.Caller), Called: string(w.Called),
		CallSkill: string(w.CallSkill), CallSkillID: w.CallSkillID.Int(),
		OrigCalledNum: string(w.OrigCalledNum), CallData: string(w.CallData),
		BeginTime: msTime(w.BeginTime), EndTime: msTime(w.EndTime),
		UserPriority: w.UserPriority.Int(), TrunkNo: w.TrunkNo.Int(),
		LogonTimes: w.LogonTimes.Int(), MediaType: w.MediaType.Int(),
		MediaAbility: w.MediaAbility.Int(), WaitTime: w.WaitTime.V,
	}, nil
}
