package cecsim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Gateway return codes the simulator produces.
const (
	codeOK            = "0"
	codeBadParam      = "000-002"
	codeNoPermission  = "000-003"
	codeRepeated      = "000-007"
	codeLoginParam    = "100-001"
	codeAlreadyIn     = "100-002"
	codeWrongPassword = "100-004"
	codeNotSignedIn   = "100-006"
	codeLogoutState   = "100-010"
	codeLoginInvalid  = "100-011"
	codeAgentType     = "100-012"
)

var codeMessages = map[string]string{
	codeBadParam:      "invalid parameter",
	codeNoPermission:  "no right to invite resouce",
	codeRepeated:      "interface invoked repeatedly",
	codeLoginParam:    "sign-in parameter is empty",
	codeAlreadyIn:     "agent has signed in",
	codeWrongPassword: "wrong username or password",
	codeNotSignedIn:   "agent not signed in",
	codeLogoutState:   "agent state error at sign-out",
	codeLoginInvalid:  "invalid sign-in parameter",
	codeAgentType:     "wrong agent type",
}

const maxQueuedEvents = 1000

// session is one CC-Gateway API session (a monitoring agent signed in over
// the API), distinct from the modelled presence of the roster agent.
type session struct {
	agentID   int32
	signedIn  bool
	state     int // agentState after sign-in (3 busy, 4 idle, 5 wrap-up)
	guid      string
	prevGUID  string
	guidSetAt time.Time // when guid was issued
	loginTime time.Time
	lastSeen  atomic.Int64 // unix ns of the last authenticated request
	queue     []gwEvent
	wake      chan struct{} // closed (and replaced) on any change a poller must see
}

type gwEvent struct {
	Type    string
	Content any
	At      time.Time
}

type gwResp struct {
	Message string `json:"message"`
	Retcode string `json:"retcode"`
	Result  any    `json:"result,omitempty"`
}

func newGUID() string { return uuid.NewString() + ".AgentGateway0" }

// bareGUID accepts both "JSESSIONID=<guid>" and the bare value.
func bareGUID(h string) string {
	h = strings.TrimSpace(h)
	if v, ok := strings.CutPrefix(h, "JSESSIONID="); ok {
		return v
	}
	return h
}

func (ss *session) broadcast() {
	close(ss.wake)
	ss.wake = make(chan struct{})
}

func (ss *session) enqueue(typ string, content any) {
	if len(ss.queue) >= maxQueuedEvents {
		ss.queue = ss.queue[1:]
	}
	ss.queue = append(ss.queue, gwEvent{Type: typ, Content: content, At: time.Now()})
	ss.broadcast()
}

func (ss *session) signOut() {
	ss.signedIn = false
	ss.queue = nil
	ss.prevGUID = ""
	ss.broadcast()
}

func (s *Sim) expired(ss *session, now time.Time) bool {
	return now.UnixNano()-ss.lastSeen.Load() > int64(s.cfg.NoPollTimeout)
}

// checkLocked authenticates a gateway request for agent id; s.mu is held
// (read or write). It returns the session, whether the superseded GUID was
// used, and a non-"0" code on failure.
func (s *Sim) checkLocked(r *http.Request, id int32, now time.Time) (*session, bool, string) {
	ss := s.sessions[id]
	if ss == nil || !ss.signedIn || s.expired(ss, now) {
		return nil, false, codeNotSignedIn
	}
	g := bareGUID(r.Header.Get("Guid"))
	switch {
	case g == "":
		return nil, false, codeNoPermission
	case g == ss.guid:
		return ss, false, codeOK
	case g == ss.prevGUID && now.Before(ss.guidSetAt.Add(s.cfg.GUIDTimeout)):
		return ss, true, codeOK
	}
	return nil, false, codeNoPermission
}

func pathID(r *http.Request, name string) (int32, bool) {
	n, err := strconv.Atoi(r.PathValue(name))
	if err != nil || n < 0 || n > 999999 {
		return 0, false
	}
	return int32(n), true
}

func writeCode(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusOK, gwResp{Message: codeMessages[code], Retcode: code})
}

// gwAuth runs the common prologue of guarded gateway calls under a read lock
// and calls fn with the session while still holding it.
func (s *Sim) gwAuth(w http.ResponseWriter, r *http.Request, fn func(ss *session) (any, string)) {
	id, ok := pathID(r, "id")
	if !ok {
		writeCode(w, codeBadParam)
		return
	}
	now := time.Now()
	s.mu.RLock()
	ss, _, code := s.checkLocked(r, id, now)
	var result any
	if code == codeOK {
		ss.lastSeen.Store(now.UnixNano())
		result, code = fn(ss)
	}
	s.mu.RUnlock()
	if code != codeOK {
		writeCode(w, code)
		return
	}
	writeJSON(w, http.StatusOK, gwResp{Message: "success", Retcode: codeOK, Result: result})
}

// flexBool accepts true/false and "true"/"false".
func flexBool(raw json.RawMessage) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return true
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return true
	}
	var str string
	if json.Unmarshal(raw, &str) != nil {
		return false
	}
	_, err := strconv.ParseBool(str)
	return err == nil
}

func (s *Sim) handleLogin(force bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r, "id")
		if !ok {
			writeCode(w, codeBadParam)
			return
		}
		var body map[string]json.RawMessage
		if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&body); err != nil {
			writeCode(w, codeLoginParam)
			return
		}
		var pw string
		if json.Unmarshal(body["password"], &pw) != nil || pw == "" {
			writeCode(w, codeLoginParam)
			return
		}
		for _, k := range []string{"autoanswer", "autoenteridle", "releasephone", "phonelinkage", "checkInWebm", "checkInMailm", "listenStatus"} {
			if !flexBool(body[k]) {
				writeCode(w, codeLoginInvalid)
				return
			}
		}
		if raw, ok := body["phonenum"]; ok {
			var str string
			if json.Unmarshal(raw, &str) != nil {
				if _, ok := flexInt(raw, 0); !ok {
					writeCode(w, codeLoginInvalid)
					return
				}
			}
		}
		agentType, ok := flexInt(body["agenttype"], 4)
		if !ok || (agentType != 4 && agentType != 11) {
			writeCode(w, codeAgentType)
			return
		}
		status, ok := flexInt(body["status"], 4)
		if !ok || status < 3 || status > 5 {
			writeCode(w, codeLoginInvalid)
			return
		}
		now := time.Now()
		s.mu.Lock()
		if _, known := s.agents[id]; !known || pw != s.cfg.AgentPassword {
			s.mu.Unlock()
			writeCode(w, codeWrongPassword)
			return
		}
		ss := s.sessions[id]
		if ss == nil {
			ss = &session{agentID: id, wake: make(chan struct{})}
			s.sessions[id] = ss
		}
		if ss.signedIn && !s.expired(ss, now) && !force {
			s.mu.Unlock()
			writeCode(w, codeAlreadyIn)
			return
		}
		if ss.signedIn {
			ss.signOut() // forcelogin (or a lapsed session): the old GUID dies here
		}
		ss.signedIn = true
		ss.state = status
		ss.guid = newGUID()
		ss.prevGUID = ""
		ss.guidSetAt = now
		ss.loginTime = now
		ss.lastSeen.Store(now.UnixNano())
		ss.enqueue("AgentOther_InService", nil)
		ss.enqueue("AgentState_Ready", nil)
		switch status {
		case 3:
			ss.enqueue("AgentState_SetNotReady_Success", nil)
		case 5:
			ss.enqueue("AgentState_Work", nil)
		}
		guid := ss.guid
		vdn := s.vdnOf(int(id))
		s.mu.Unlock()
		s.log.Debug("api session signed in", "agent", id, "force", force)
		w.Header().Set("Set-GUID", "JSESSIONID="+guid)
		writeJSON(w, http.StatusOK, gwResp{Message: "success", Retcode: codeOK, Result: map[string]any{
			"vdnid":         s.loose(int64(vdn)),
			"workno":        strconv.Itoa(int(id)),
			"mediatype":     "TTF",
			"loginTime":     strconv.FormatInt(now.UnixMilli(), 10),
			"isForceChange": "false",
			"serverName":    "AgentGateway",
			"timeRemaining": "",
		}})
	}
}

// handleLoginEx signs in to the CCS only (no media server, no licence);
// the simulator models no media, so it is login unless the tenant does not
// offer it (NoLoginEx), in which case the path is not found.
func (s *Sim) handleLoginEx(w http.ResponseWriter, r *http.Request) {
	if s.cfg.NoLoginEx {
		http.NotFound(w, r)
		return
	}
	s.handleLogin(false)(w, r)
}

func (s *Sim) handleLogout(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r, "id")
	if !ok {
		writeCode(w, codeBadParam)
		return
	}
	now := time.Now()
	s.mu.Lock()
	ss, _, code := s.checkLocked(r, id, now)
	if code == codeOK {
		if a := s.agents[id]; a != nil && len(a.calls) > 0 {
			code = codeLogoutState // the vendor refuses to sign out a talking agent
		} else {
			ss.signOut()
		}
	}
	s.mu.Unlock()
	if code != codeOK {
		writeCode(w, code)
		return
	}
	s.log.Debug("api session signed out", "agent", id)
	writeJSON(w, http.StatusOK, gwResp{Message: "success", Retcode: codeOK})
}

// rotateLocked issues a new GUID; in dynamic mode the old one keeps working
// for GUIDTimeout.
func (s *Sim) rotateLocked(ss *session, now time.Time) {
	if s.cfg.AuthMode == AuthDynamic {
		ss.prevGUID = ss.guid
	} else {
		ss.prevGUID = ""
	}
	ss.guid = newGUID()
	ss.guidSetAt = now
}

func (s *Sim) handleUpdateGUID(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r, "id")
	if !ok {
		writeCode(w, codeBadParam)
		return
	}
	now := time.Now()
	s.mu.Lock()
	ss, _, code := s.checkLocked(r, id, now)
	var guid string
	if code == codeOK {
		ss.lastSeen.Store(now.UnixNano())
		s.rotateLocked(ss, now)
		guid = ss.guid
	}
	s.mu.Unlock()
	if code != codeOK {
		writeCode(w, code)
		return
	}
	w.Header().Set("Set-GUID", "JSESSIONID="+guid)
	writeJSON(w, http.StatusOK, gwResp{Message: "success", Retcode: codeOK, Result: map[string]string{"guid": guid}})
}

type eventBody struct {
	EventType    string `json:"eventType"`
	WorkNo       string `json:"workNo"`
	Content      any    `json:"content"`
	EventGenTime int64  `json:"eventGenTime"`
}

type eventResp struct {
	Message string `json:"message"`
	Retcode string `json:"retcode"`
	Event   any    `json:"event,omitempty"`
}

func (s *Sim) handleAgentEvent(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r, "id")
	if !ok {
		writeCode(w, codeBadParam)
		return
	}
	deadline := time.Now().Add(s.cfg.LongPollHold)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		now := time.Now()
		s.mu.Lock()
		ss, usedPrev, code := s.checkLocked(r, id, now)
		if code != codeOK {
			s.mu.Unlock()
			writeCode(w, code)
			return
		}
		ss.lastSeen.Store(now.UnixNano())
		if len(ss.queue) > 0 || !now.Before(deadline) {
			var ev any
			switch {
			case len(ss.queue) > 0:
				e := ss.queue[0]
				ss.queue[0] = gwEvent{}
				ss.queue = ss.queue[1:]
				ev = eventBody{EventType: e.Type, WorkNo: strconv.Itoa(int(id)), Content: e.Content, EventGenTime: e.At.UnixMilli()}
			case s.cfg.EmptyPollMode == EmptyPollNull:
				ev = json.RawMessage("null")
			case s.cfg.EmptyPollMode == EmptyPollEmptyObject:
				ev = json.RawMessage("{}")
			}
			// Dynamic auth delivers a rotated GUID only on poll answers; a
			// poller still on the superseded GUID is told again.
			rotated := false
			if s.cfg.AuthMode == AuthDynamic && now.Sub(ss.guidSetAt) >= s.cfg.GUIDInterval {
				s.rotateLocked(ss, now)
				rotated = true
			}
			guid := ss.guid
			s.mu.Unlock()
			if rotated || usedPrev {
				w.Header().Set("Set-GUID", "JSESSIONID="+guid)
			}
			writeJSON(w, http.StatusOK, eventResp{Retcode: codeOK, Event: ev})
			return
		}
		wake := ss.wake
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		select {
		case <-wake:
		case <-timer.C:
		case <-r.Context().Done():
			return
		case <-s.done:
			writeCode(w, codeNotSignedIn)
			return
		}
	}
}

func (s *Sim) agentState(ss *session) int {
	if a := s.agents[ss.agentID]; a != nil && len(a.calls) > 0 {
		return 7
	}
	return ss.state
}

func (s *Sim) handleAgentStatus(w http.ResponseWriter, r *http.Request) {
	s.gwAuth(w, r, func(ss *session) (any, string) {
		st := s.agentState(ss)
		return map[string]any{"agentState": s.loose(int64(st)), "isWorking": st == 7}, codeOK
	})
}

func (s *Sim) handleAllCallInfoEx(w http.ResponseWriter, r *http.Request) {
	s.gwAuth(w, r, func(ss *session) (any, string) {
		wn, ok := pathID(r, "workno")
		if !ok {
			return nil, codeBadParam
		}
		a := s.agents[wn]
		if a == nil || a.vdn != s.vdnOf(int(ss.agentID)) {
			return nil, codeBadParam
		}
		if len(a.calls) == 0 {
			switch s.cfg.NoCallMode {
			case NoCallOmit:
				return nil, codeOK
			case NoCallError:
				return nil, s.cfg.NoCallCode
			}
			return []string{}, codeOK
		}
		out := make([]string, len(a.calls))
		copy(out, a.calls)
		return out, codeOK
	})
}

func (s *Sim) handleCallInfoByCallID(w http.ResponseWriter, r *http.Request) {
	s.gwAuth(w, r, func(ss *session) (any, string) {
		c := s.calls[r.PathValue("callid")]
		if c == nil || s.vdnOf(int(c.workNo)) != s.vdnOf(int(ss.agentID)) {
			return nil, codeBadParam
		}
		return map[string]any{
			"callfeature":   s.loose(0),
			"callid":        c.id,
			"caller":        s.loose(c.caller),
			"called":        s.loose(c.called),
			"callskill":     "default",
			"callskillid":   s.loose(1),
			"orgicallednum": "",
			"calldata":      "",
			"begintime":     c.begin.UnixMilli(),
			"userPriority":  0,
			"trunkNo":       0,
			"logontimes":    0,
			"mediaType":     s.loose(5),
			"mediaAbility":  s.loose(1),
			"waitTime":      0,
		}, codeOK
	})
}

// sessionCallEventLocked tells an API session about its own agent's calls.
func (s *Sim) sessionCallEventLocked(workNo int32, c *call, started bool) {
	ss := s.sessions[workNo]
	if ss == nil || !ss.signedIn {
		return
	}
	if started {
		ss.enqueue("AgentEvent_Talking", map[string]string{
			"caller": strconv.FormatInt(c.caller, 10), "called": strconv.FormatInt(c.called, 10),
			"callid": c.id, "feature": "0", "type": "main", "mediaAbility": "1",
		})
		return
	}
	ss.enqueue("AgentEvent_Call_Release", c.id)
	ss.enqueue("AgentState_Ready", nil)
}

// KickOut signs the API session of agentID out; its requests then get 100-006.
func (s *Sim) KickOut(agentID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.sessions[int32(agentID)]; ss != nil && ss.signedIn {
		ss.signOut()
	}
}

// InvalidateGUID makes the session's GUIDs stop working (000-003) while the
// session stays signed in, as when the gateway loses its authentication.
func (s *Sim) InvalidateGUID(agentID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.sessions[int32(agentID)]; ss != nil && ss.signedIn {
		ss.guid = newGUID() // never delivered to anyone
		ss.prevGUID = ""
		ss.broadcast()
	}
}

// SessionSignedIn reports whether agentID has a live API session.
func (s *Sim) SessionSignedIn(agentID int) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ss := s.sessions[int32(agentID)]
	return ss != nil && ss.signedIn && !s.expired(ss, time.Now())
}

func (s *Sim) reapInterval() time.Duration {
	return max(10*time.Millisecond, min(s.cfg.NoPollTimeout/4, time.Second))
}

// reap signs out every session idle for longer than NoPollTimeout.
func (s *Sim) reap(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.sessions {
		if ss.signedIn && s.expired(ss, now) {
			ss.enqueue("AgentOther_ShutdownService", map[string]string{"loginTime": strconv.FormatInt(ss.loginTime.UnixMilli(), 10)})
			ss.signOut()
			s.log.Debug("api session reaped", "agent", id)
		}
	}
}

func (s *Sim) runReaper(ctx context.Context) {
	t := time.NewTicker(s.reapInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case now := <-t.C:
			s.reap(now)
		}
	}
}
