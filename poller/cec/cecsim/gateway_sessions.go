package cecsim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Gateway sessions: sign-in (login, loginex, forcelogin), sign-out, GUID
// rotation, the reaper of idle sessions, and the faults tests inject into
// them (KickOut, InvalidateGUID).

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
		ss.signIns++
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

// SignIns returns, for every agent that signed in over the gateway API
// since the simulator started, how many times it did (login, loginex and
// forcelogin alike). With [Sim.LiveSessions] and the forcelogin counter it
// shows what a read-only client such as cecbridge probe left behind.
func (s *Sim) SignIns() map[int]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[int]int{}
	for id, ss := range s.sessions {
		if ss.signIns > 0 {
			out[int(id)] = ss.signIns
		}
	}
	return out
}

// LiveSessions returns the agents whose API session is signed in now, in
// ascending order.
func (s *Sim) LiveSessions() []int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := time.Now()
	var out []int
	for id, ss := range s.sessions {
		if ss.signedIn && !s.expired(ss, now) {
			out = append(out, int(id))
		}
	}
	slices.Sort(out)
	return out
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
