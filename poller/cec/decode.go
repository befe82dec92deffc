package cec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
