package cecsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	fab := func(pattern, name string, h http.HandlerFunc) {
		mux.Handle(pattern, s.endpoint(name, famFabric, h))
	}
	gw := func(pattern, name string, h http.HandlerFunc) {
		mux.Handle(pattern, s.endpoint(name, famGateway, h))
	}
	fab("POST /apigovernance/api/oauth/tokenByAkSk", "token", s.handleToken)
	fab("GET /apiaccess/CC-Management/v1/queryAgentInfo", "queryAgentInfo", s.handleQueryAgentInfo)
	fab("POST /apiaccess/CC-Management/v2/mobileAgent/queryPhone", "queryPhone", s.handleQueryPhone)
	fab("POST /apiaccess/rest/CC-Management/v1/queryAgentInfoByAccount", "queryAgentInfoByAccount", s.handleQueryAgentInfoByAccount)

	const g = "/agentgateway/resource/"
	gw("PUT "+g+"onlineagent/{id}", "login", s.handleLogin(false))
	gw("PUT "+g+"onlineagent/{id}/forcelogin", "forcelogin", s.handleLogin(true))
	gw("PUT "+g+"onlineagent/{id}/loginex", "loginex", s.handleLoginEx)
	gw("DELETE "+g+"onlineagent/{id}/logout", "logout", s.handleLogout)
	gw("PUT "+g+"onlineagent/{id}/updateGuid", "updateGuid", s.handleUpdateGUID)
	gw("GET "+g+"onlineagent/{id}/agentstatus", "agentstatus", s.handleAgentStatus)
	gw("GET "+g+"agentevent/{id}", "agentevent", s.handleAgentEvent)
	gw("GET "+g+"calldata/{id}/allcallinfoEx/{workno}", "allcallinfoEx", s.handleAllCallInfoEx)
	gw("GET "+g+"calldata/{id}/callinfobycallid/{callid}", "callinfobycallid", s.handleCallInfoByCallID)
	s.handleCMS(mux)

	mux.HandleFunc("GET /cecsim/truth", s.ctlTruth)
	mux.HandleFunc("POST /cecsim/faults", s.ctlInject)
	mux.HandleFunc("DELETE /cecsim/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("POST /cecsim/script", s.ctlScript)
	mux.HandleFunc("POST /cecsim/revoke-tokens", func(w http.ResponseWriter, _ *http.Request) {
		s.RevokeTokens()
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("POST /cecsim/kick/{agentid}", func(w http.ResponseWriter, r *http.Request) {
		s.ctlAgentOp(w, r, s.KickOut)
	})
	mux.HandleFunc("POST /cecsim/invalidate-guid/{agentid}", func(w http.ResponseWriter, r *http.Request) {
		s.ctlAgentOp(w, r, s.InvalidateGUID)
	})
	mux.HandleFunc("GET /cecsim/counters", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Counters())
	})
	mux.HandleFunc("GET /cecsim/agents/{workNo}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("workNo"))
		info, ok := s.Agent(n)
		if err != nil || !ok {
			ctlError(w, http.StatusNotFound, ErrUnknownAgent)
			return
		}
		writeJSON(w, http.StatusOK, info)
	})
	mux.HandleFunc("GET /cecsim/phones", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Phones())
	})
	mux.HandleFunc("GET /cecsim/cms", s.ctlCMS)
	mux.HandleFunc("POST /cecsim/cms", s.ctlCMS)
	return mux
}

func ctlError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func (s *Sim) ctlAgentOp(w http.ResponseWriter, r *http.Request, op func(int)) {
	n, err := strconv.Atoi(r.PathValue("agentid"))
	if err != nil {
		ctlError(w, http.StatusBadRequest, fmt.Errorf("%w: agent id", ErrBadValue))
		return
	}
	op(n)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Sim) ctlTruth(w http.ResponseWriter, r *http.Request) {
	var since uint64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			ctlError(w, http.StatusBadRequest, fmt.Errorf("%w: since", ErrBadValue))
			return
		}
		since = n
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, c := range s.Truth(since) {
		if err := enc.Encode(c); err != nil {
			return // client went away
		}
	}
}

func (s *Sim) ctlInject(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&f); err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	if _, ok := faultKindNames[f.Kind]; !ok {
		ctlError(w, http.StatusBadRequest, fmt.Errorf("%w: fault kind", ErrBadValue))
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"id": s.Inject(f)})
}

// ScriptAction is the body of POST /cecsim/script; Action names a scripting
// method in snake_case. CallStatus ("alerting", "talking", "held") and
// Direction ("inbound", "outbound") go with start_call (optional) and
// set_call_status.
type ScriptAction struct {
	Action      string `json:"action"`
	WorkNo      int    `json:"work_no,omitempty"`
	CallID      string `json:"call_id,omitempty"`
	SIPAccount  string `json:"sip_account,omitempty"`
	AccountCode string `json:"account_code,omitempty"`
	PhoneNum    string `json:"phone_num,omitempty"`
	Status      int    `json:"status,omitempty"`
	CallStatus  string `json:"call_status,omitempty"`
	Direction   string `json:"direction,omitempty"`
}

// Script applies one ScriptAction and returns the new call ID for start_call.
func (s *Sim) Script(a ScriptAction) (string, error) {
	switch a.Action {
	case "start_call":
		st := CallAlerting
		if a.CallStatus != "" {
			var err error
			if st, err = ParseCallStatus(a.CallStatus); err != nil {
				return "", err
			}
		}
		dir, err := ParseDirection(a.Direction)
		if err != nil {
			return "", err
		}
		return s.StartCallWith(a.WorkNo, st, dir)
	case "set_call_status":
		st, err := ParseCallStatus(a.CallStatus)
		if err != nil {
			return "", err
		}
		return "", s.SetCallStatus(a.WorkNo, a.CallID, st)
	case "end_call":
		return "", s.EndCall(a.WorkNo, a.CallID)
	case "sign_in":
		return "", s.SignIn(a.WorkNo)
	case "sign_out":
		return "", s.SignOut(a.WorkNo)
	case "set_softphone":
		return "", s.SetSoftphone(a.WorkNo, a.SIPAccount, a.AccountCode)
	case "set_phone_status":
		return "", s.SetPhoneStatus(a.PhoneNum, a.Status)
	case "add_agent":
		return "", s.AddAgent(a.WorkNo)
	case "remove_agent":
		return "", s.RemoveAgent(a.WorkNo)
	}
	return "", fmt.Errorf("%w: unknown action %q", ErrBadValue, a.Action)
}

func (s *Sim) ctlScript(w http.ResponseWriter, r *http.Request) {
	var a ScriptAction
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&a); err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	id, err := s.Script(a)
	switch {
	case errors.Is(err, ErrUnknownAgent), errors.Is(err, ErrUnknownCall), errors.Is(err, ErrUnknownPhone):
		ctlError(w, http.StatusNotFound, err)
	case err != nil:
		ctlError(w, http.StatusConflict, err)
	default:
		out := map[string]any{"ok": true}
		if id != "" {
			out["call_id"] = id
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// CMSSettings is the body and answer of /cecsim/cms: the CMS switches that
// can change while the simulator runs. A POST changes the fields it names.
type CMSSettings struct {
	Lag           *Duration `json:"lag,omitempty"`
	Licensed      *bool     `json:"licensed,omitempty"`
	ClientRefused *bool     `json:"client_refused,omitempty"` // every CMS call answers 403
}

// Duration is a time.Duration written as a Go duration string ("2s").
type Duration time.Duration

// MarshalText writes the duration as "2s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil || v < 0 {
		return fmt.Errorf("%w: duration %q", ErrBadValue, b)
	}
	*d = Duration(v)
	return nil
}

func (s *Sim) ctlCMS(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var set CMSSettings
		if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&set); err != nil {
			ctlError(w, http.StatusBadRequest, err)
			return
		}
		if set.Lag != nil {
			s.SetCMSLag(time.Duration(*set.Lag))
		}
		if set.Licensed != nil {
			s.SetCMSLicensed(*set.Licensed)
		}
		if set.ClientRefused != nil {
			s.SetCMSClientRefused(*set.ClientRefused)
		}
	}
	lag, licensed, refused := Duration(s.CMSLag()), s.CMSLicensed(), s.CMSClientRefused()
	writeJSON(w, http.StatusOK, CMSSettings{Lag: &lag, Licensed: &licensed, ClientRefused: &refused})
}
