package cecsim

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"time"
)

// The simulated CC-CMS monitoring interfaces (reference/cec-cms.md).

const (
	cmsPath           = "/rest/cmsapp/v1/openapi/"
	epQueryAgentCalls = "queryagentcalls"
	epAgentStates     = "agentstatusinfobyagentids"
	epTotalAgentState = "totalagentstate"

	cmsMaxCallsIDs = 3000
	cmsMaxStateIDs = 6000

	cmsOK           = "0100000"
	cmsInvalidParam = "0100002"
	cmsNeedsV3R8    = "0100003"

	notSignedInLogon = 4294967295000 // logonTime of an agent not signed in
	voiceMediaType   = 5
)

var cmsMessages = map[string]string{
	cmsInvalidParam: "invalid parameter",
	cmsNeedsV3R8:    "the interface needs CTI V3R8 and a CMS licence",
}

type cmsResp struct {
	Result      string `json:"result,omitempty"`
	ResultCode  string `json:"resultCode"`
	ResultDesc  any    `json:"resultDesc"`
	ResultDatas any    `json:"resultDatas,omitempty"`
}

func writeCMSCode(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusOK, cmsResp{ResultCode: code, ResultDesc: cmsMessages[code]})
}

// writeClientRefused answers as CMS does a caller outside the tenant's IP
// whitelist: HTTP 403. Public sources give the status only, no body, so
// the body is a plain one with no CMS envelope and no resultCode.
func writeClientRefused(w http.ResponseWriter) {
	writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "reason": "client not allowed"})
}

func writeCMSResult(w http.ResponseWriter, list any) {
	writeJSON(w, http.StatusOK, cmsResp{Result: "0", ResultCode: cmsOK, ResultDesc: list, ResultDatas: list})
}

// cmsRequest is the body every CMS interface takes; the IDs come back
// unique and sorted.
type cmsRequest struct {
	CCID     int
	VDN      int
	AgentIDs []int32
}

func parseCMSRequest(body []byte, ccID int, withAgents bool, limit int) (cmsRequest, bool) {
	var raw struct {
		CCID     json.RawMessage   `json:"ccId"`
		VDN      json.RawMessage   `json:"vdn"`
		AgentIDs []json.RawMessage `json:"agentIds"`
	}
	if json.Unmarshal(body, &raw) != nil || len(raw.CCID) == 0 || len(raw.VDN) == 0 {
		return cmsRequest{}, false
	}
	var req cmsRequest
	var ok bool
	if req.CCID, ok = flexInt(raw.CCID, 0); !ok || req.CCID != ccID {
		return req, false
	}
	if req.VDN, ok = flexInt(raw.VDN, 0); !ok || req.VDN < 1 || req.VDN > 5000 {
		return req, false
	}
	if !withAgents {
		return req, true
	}
	if len(raw.AgentIDs) == 0 || len(raw.AgentIDs) > limit {
		return req, false
	}
	req.AgentIDs = make([]int32, 0, len(raw.AgentIDs))
	for _, r := range raw.AgentIDs {
		n, ok := flexInt(r, 0)
		if !ok || n < 101 || n > 999999 {
			return req, false
		}
		req.AgentIDs = append(req.AgentIDs, int32(n))
	}
	slices.Sort(req.AgentIDs)
	req.AgentIDs = slices.Compact(req.AgentIDs)
	return req, true
}

// cmsHandler runs the common prologue of a CMS interface: the C2
// signature, the licence, the request's parameters; then answer builds the
// payload from the lagged CMS view.
func (s *Sim) cmsHandler(withAgents bool, limit int, answer func(v *cmsView, req cmsRequest) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unreadable body"})
			return
		}
		if err := s.verifyC2(r, body, time.Now()); err != nil {
			s.log.Debug("cms signature refused", "reason", err.Error())
			// Some gateways echo what they refused; a client must not
			// copy this into its errors or logs.
			writeJSON(w, http.StatusUnauthorized, map[string]string{
				"error": "authentication failed", "reason": err.Error(), "authorization": r.Header.Get("Authorization"),
			})
			return
		}
		if !s.CMSLicensed() {
			writeCMSCode(w, cmsNeedsV3R8)
			return
		}
		req, ok := parseCMSRequest(body, s.cfg.CMS.CCID, withAgents, limit)
		if !ok {
			writeCMSCode(w, cmsInvalidParam)
			return
		}
		var list any
		if s.withCMSView(r.Context().Done(), func(v *cmsView) { list = answer(v, req) }) {
			writeCMSResult(w, list)
		}
	}
}

// answerAgents picks the requested agents CMS knows in the request's VDN,
// in descending order (never the request's), plus an unasked one when
// Config.CMS.AnswerUnasked says so. Agents of another VDN or unknown ones
// are left out, a case the vendor does not document.
func (s *Sim) answerAgents(v *cmsView, req cmsRequest) (wns []int32, unasked int32) {
	for _, wn := range slices.Backward(req.AgentIDs) {
		if a := v.agents[wn]; a != nil && a.vdn == int32(req.VDN) {
			wns = append(wns, wn)
		}
	}
	if s.cfg.CMS.AnswerUnasked {
		unasked = req.AgentIDs[len(req.AgentIDs)-1] + 1
		if unasked > 999999 {
			unasked = req.AgentIDs[0] - 1
		}
	}
	return wns, unasked
}

type cmsCallOut struct {
	CallID     string `json:"callId"`
	CallStatus any    `json:"callStatus"`
	CallInOut  any    `json:"callInOut"`
	MediaType  any    `json:"mediaType"`
}

type cmsAgentCallsOut struct {
	AgentID  any          `json:"agentId"`
	CallList []cmsCallOut `json:"callList"`
}

func (s *Sim) answerQueryAgentCalls(v *cmsView, req cmsRequest) any {
	wns, unasked := s.answerAgents(v, req)
	out := make([]cmsAgentCallsOut, 0, len(wns)+1)
	for _, wn := range wns {
		a := v.agents[wn]
		list := make([]cmsCallOut, len(a.calls))
		for i, c := range a.calls {
			list[i] = cmsCallOut{CallID: c.id, CallStatus: s.loose(int64(c.status)), CallInOut: s.loose(int64(c.dir)), MediaType: s.loose(voiceMediaType)}
		}
		out = append(out, cmsAgentCallsOut{AgentID: s.loose(int64(wn)), CallList: list})
	}
	if unasked != 0 {
		out = append(out, cmsAgentCallsOut{AgentID: s.loose(int64(unasked)), CallList: []cmsCallOut{
			{CallID: "1000000000-0", CallStatus: int64(CallTalking), CallInOut: int64(Inbound), MediaType: voiceMediaType},
		}})
	}
	return out
}

type cmsAgentStateOut struct {
	AgentID               any    `json:"agentId"`
	CurrentState          any    `json:"currentState"`
	CurrentStateTime      any    `json:"currentStateTime"`
	PrevState             any    `json:"prevState"`
	PrevStateTime         any    `json:"prevStateTime"`
	CurrentStateReason    any    `json:"currentStateReason"`
	LogonTime             any    `json:"logonTime"`
	LocationID            string `json:"locationId"`
	AgentRelease          string `json:"agentRelease"`
	CurrentPrivateCallNum any    `json:"currentPrivateCallNum"`
}

func (s *Sim) answerAgentStates(v *cmsView, req cmsRequest) any {
	wns, unasked := s.answerAgents(v, req)
	asOf := v.asOf.UnixNano()
	out := make([]cmsAgentStateOut, 0, len(wns)+1)
	for _, wn := range wns {
		a := v.agents[wn]
		logon := int64(notSignedInLogon)
		if a.logon != 0 {
			logon = a.logon / int64(time.Millisecond)
		}
		out = append(out, cmsAgentStateOut{
			AgentID: s.loose(int64(wn)), CurrentState: s.loose(int64(a.state)),
			CurrentStateTime: s.loose(max(asOf-a.since, 0) / int64(time.Second)),
			PrevState:        s.loose(int64(a.prev)), PrevStateTime: s.loose(a.prevDur / int64(time.Second)),
			CurrentStateReason: s.loose(0), LogonTime: s.loose(logon), LocationID: "0",
			CurrentPrivateCallNum: s.loose(0),
		})
	}
	if unasked != 0 {
		out = append(out, cmsAgentStateOut{AgentID: int64(unasked), CurrentState: int64(stateTalking), CurrentStateTime: 7,
			PrevState: int64(stateIdle), PrevStateTime: 60, CurrentStateReason: 0, LogonTime: int64(notSignedInLogon), CurrentPrivateCallNum: 0})
	}
	return out
}

type cmsPresenceOut struct {
	AgentID any `json:"agentId"`
	State   any `json:"state"`
}

// handleCMS registers the CMS interfaces on mux. A refused client gets 403
// from every one before anything else is looked at; totalagentstate
// answers 404 where the CTI version lacks it.
func (s *Sim) handleCMS(mux *http.ServeMux) {
	route := func(path, name string, h http.HandlerFunc) {
		mux.Handle("POST "+cmsPath+path, s.endpoint(name, famCMS, func(w http.ResponseWriter, r *http.Request) {
			if s.CMSClientRefused() {
				writeClientRefused(w)
				return
			}
			h(w, r)
		}))
	}
	route("agentgroup/queryagentcalls", epQueryAgentCalls, s.cmsHandler(true, cmsMaxCallsIDs, s.answerQueryAgentCalls))
	route("agentgroup/agentstatusinfobyagentids", epAgentStates, s.cmsHandler(true, cmsMaxStateIDs, s.answerAgentStates))
	total := s.cmsHandler(false, 0, s.answerTotalAgentState)
	route("vdn/totalagentstate", epTotalAgentState, func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.CMS.NoTotalAgentState {
			http.NotFound(w, r)
			return
		}
		total(w, r)
	})
}

func (s *Sim) answerTotalAgentState(v *cmsView, req cmsRequest) any {
	out := []cmsPresenceOut{}
	for wn, a := range v.agents {
		if a.vdn == int32(req.VDN) {
			out = append(out, cmsPresenceOut{AgentID: s.loose(int64(wn)), State: s.loose(int64(a.state))})
		}
	}
	return out
}
