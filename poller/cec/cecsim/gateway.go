package cecsim

import (
	"encoding/json"
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
	signIns   int // successful sign-ins (login, loginex, forcelogin), for tests
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
