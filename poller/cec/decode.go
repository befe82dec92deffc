package cec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Decoders turn one response body into typed values. They never panic on
// hostile input (see the fuzz tests) and report two kinds of failure: a
// *codeError when the vendor answered with a failure code, and any other
// error when the body is not what the interface returns (ErrBadResponse).

// codeError is a well-formed vendor answer carrying a failure code.
type codeError struct {
	code, msg string
	notFound  bool
}

func (e *codeError) Error() string { return "vendor code " + e.code }

var errShape = errors.New("unexpected response shape")

// isObject reports whether b is (after whitespace) a JSON object, because
// json.Unmarshal happily decodes "null" into a struct and leaves it empty.
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// ---- tokenByAkSk ----

type tokenWire struct {
	AccessToken flexString `json:"AccessToken"`
	Expires     flexInt    `json:"Expires"`
	CreateTime  flexInt    `json:"CreateTime"`
}

// decodeToken returns the bearer token and the lifetime the server granted
// (0 when it did not say).
func decodeToken(b []byte) (string, time.Duration, error) {
	if !isObject(b) {
		return "", 0, errShape
	}
	var w tokenWire
	if err := json.Unmarshal(b, &w); err != nil {
		return "", 0, err
	}
	if w.AccessToken == "" {
		return "", 0, fmt.Errorf("%w: no AccessToken", errShape)
	}
	var life time.Duration
	if w.Expires.Set && w.Expires.V > 0 && w.Expires.V <= 86400 {
		life = time.Duration(w.Expires.V) * time.Second
	}
	return string(w.AccessToken), life, nil
}

// ---- queryAgentInfo ----

type agentInfoWire struct {
	RetCode        *flexString `json:"retCode"`
	RetMsg         flexString  `json:"retMsg"`
	SIPServiceIP   flexString  `json:"sipServiceIp"`
	SIPServicePort flexInt     `json:"sipServicePort"`
	Agents         []struct {
		WorkNo      flexInt    `json:"workNo"`
		SIPAccount  flexString `json:"sipAccount"`
		SIPPwd      flexString `json:"sipPwd"`
		AccountCode flexString `json:"accountCode"`
	} `json:"agents"`
}

func decodeAgentInfo(b []byte) (*AgentInfo, error) {
	if !isObject(b) {
		return nil, errShape
	}
	var w agentInfoWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	if w.RetCode != nil && *w.RetCode != "0" && *w.RetCode != "" {
		return nil, &codeError{code: string(*w.RetCode), msg: string(w.RetMsg)}
	}
	// A body without the agents list must not be read as "no agents": the
	// poller would then report every binding as deleted.
	if w.Agents == nil {
		return nil, fmt.Errorf("%w: no agents list", errShape)
	}
	out := &AgentInfo{
		SIPServerIP:   string(w.SIPServiceIP),
		SIPServerPort: w.SIPServicePort.Int(),
		Agents:        make([]AgentSoftphone, 0, len(w.Agents)),
	}
	for _, a := range w.Agents {
		if !a.WorkNo.Set {
			continue // an agent without a work number cannot be keyed
		}
		out.Agents = append(out.Agents, AgentSoftphone{
			WorkNo:      a.WorkNo.Int(),
			SIPAccount:  string(a.SIPAccount),
			SIPPassword: Secret(a.SIPPwd),
			AccountCode: string(a.AccountCode),
		})
	}
	return out, nil
}

// ---- queryPhone ----

type regWire struct {
	RegIPAddress   flexString `json:"regIPAddress"`
	RegPort        flexInt    `json:"regPort"`
	SIPServiceIP   flexString `json:"sipServiceIp"`
	SIPServicePort flexInt    `json:"sipServicePort"`
}

func (r regWire) server(pool string) RegServer {
	return RegServer{Pool: pool, RegIP: string(r.RegIPAddress), RegPort: r.RegPort.Int(),
		SIPServiceIP: string(r.SIPServiceIP), SIPServicePort: r.SIPServicePort.Int()}
}

type phonePageWire struct {
	RetCode *flexString `json:"retCode"`
	RetMsg  flexString  `json:"retMsg"`
	Result  *struct {
		Total flexInt `json:"total"`
		regWire
		SingleRegServ []regWire `json:"singleRegServ"`
		PoolRegServ   *struct {
			Node1 []regWire `json:"node1"`
			Node2 []regWire `json:"node2"`
		} `json:"poolRegServ"`
		Phone []struct {
			PhoneNum flexString `json:"phoneNum"`
			Password flexString `json:"password"`
			ID       flexInt    `json:"id"`
			Status   flexInt    `json:"status"`
			Remark   flexString `json:"remark"`
			TenantID flexString `json:"tenantId"`
			PartDBID flexString `json:"partdbId"`
		} `json:"phone"`
	} `json:"result"`
}

func decodePhonePage(b []byte) (*PhonePage, error) {
	if !isObject(b) {
		return nil, errShape
	}
	var w phonePageWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	if w.RetCode == nil {
		return nil, fmt.Errorf("%w: no retCode", errShape)
	}
	if *w.RetCode != "0" {
		return nil, &codeError{code: string(*w.RetCode), msg: string(w.RetMsg)}
	}
	r := w.Result
	if r == nil || !r.Total.Set || r.Total.V < 0 {
		return nil, fmt.Errorf("%w: no result total", errShape)
	}
	p := &PhonePage{Total: r.Total.Int(), Phones: make([]Phone, 0, len(r.Phone))}
	for _, ph := range r.Phone {
		p.Phones = append(p.Phones, Phone{
			PhoneNum: string(ph.PhoneNum),
			Password: Secret(ph.Password),
			ID:       ph.ID.V,
			Status:   ph.Status.Int(),
			Remark:   string(ph.Remark),
			TenantID: string(ph.TenantID),
			PartDBID: string(ph.PartDBID),
		})
	}
	// The documented example flattens the registration address straight
	// into result instead of using singleRegServ/poolRegServ.
	if r.RegIPAddress != "" || r.RegPort.Set || r.SIPServiceIP != "" {
		p.RegServers = append(p.RegServers, r.regWire.server(""))
	}
	for _, s := range r.SingleRegServ {
		p.RegServers = append(p.RegServers, s.server("single"))
	}
	if r.PoolRegServ != nil {
		for _, s := range r.PoolRegServ.Node1 {
			p.RegServers = append(p.RegServers, s.server("node1"))
		}
		for _, s := range r.PoolRegServ.Node2 {
			p.RegServers = append(p.RegServers, s.server("node2"))
		}
	}
	return p, nil
}

// ---- queryAgentInfoByAccount ----

type agentAccountWire struct {
	ReturnCode  *flexString `json:"returnCode"`
	Description flexString  `json:"description"`
	Data        *struct {
		WorkNo      flexInt    `json:"workNo"`
		AgentType   flexInt    `json:"agentType"`
		AgentStatus flexString `json:"agentStatus"`
	} `json:"data"`
}

func decodeAgentAccount(b []byte) (*AgentAccount, error) {
	if !isObject(b) {
		return nil, errShape
	}
	var w agentAccountWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	if w.ReturnCode == nil {
		return nil, fmt.Errorf("%w: no returnCode", errShape)
	}
	// The vendor signals "no such account" with an empty workNo (or no data
	// at all), with either return code.
	missing := w.Data == nil || !w.Data.WorkNo.Set
	if *w.ReturnCode != "0" {
		return nil, &codeError{code: string(*w.ReturnCode), msg: string(w.Description), notFound: missing}
	}
	if missing {
		return nil, &codeError{code: "0", msg: string(w.Description), notFound: true}
	}
	return &AgentAccount{
		WorkNo:      w.Data.WorkNo.Int(),
		AgentType:   w.Data.AgentType.Int(),
		AgentStatus: string(w.Data.AgentStatus),
	}, nil
}

// ---- CC-Gateway ----

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
