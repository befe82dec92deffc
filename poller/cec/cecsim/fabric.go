package cecsim

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

const (
	sipServiceIP   = "10.10.96.98"
	sipServicePort = 5060
	regIPAddress   = "10.162.98.43"
	tenantID       = "202401010001"
)

// maxBody bounds every request body the simulator reads.
const maxBody = 1 << 20

func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AppKey    *string `json:"app_key"`
		AppSecret *string `json:"app_secret"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid request body"})
		return
	}
	if body.AppKey == nil || body.AppSecret == nil ||
		*body.AppKey != s.cfg.AppKey || *body.AppSecret != s.cfg.AppSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid app_key or app_secret"})
		return
	}
	life := s.cfg.TokenDefaultLifetime
	if h := r.Header.Get("X-Token-Expire"); h != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n > 0 {
			life = time.Duration(n) * time.Second
		}
	}
	life = min(life, s.cfg.TokenMaxLifetime)
	now := time.Now()
	tok := strings.ReplaceAll(uuid.NewString(), "-", "") + strings.ReplaceAll(uuid.NewString(), "-", "")
	s.tokMu.Lock()
	if len(s.tokens) > 1024 {
		for t, exp := range s.tokens {
			if now.After(exp) {
				delete(s.tokens, t)
			}
		}
	}
	s.tokens[tok] = now.Add(life)
	s.tokMu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{
		"AccessToken": tok,
		"ApplyType":   "Bearer",
		"CreateTime":  strconv.FormatInt(now.Unix(), 10),
		"Expires":     strconv.FormatInt(int64(life/time.Second), 10),
		"Scope":       "default",
		"AppKey":      s.cfg.AppKey,
		"UserID":      "Anonymous",
	})
}

// RevokeTokens invalidates every token issued so far.
func (s *Sim) RevokeTokens() {
	s.tokMu.Lock()
	s.tokens = make(map[string]time.Time)
	s.tokMu.Unlock()
}

// authorized checks the Bearer token and, if it fails, writes the configured
// expired-token answer.
func (s *Sim) authorized(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if ok {
		s.tokMu.Lock()
		exp, found := s.tokens[tok]
		s.tokMu.Unlock()
		if found && time.Now().Before(exp) {
			return true
		}
	}
	body := s.cfg.ExpiredTokenBody
	switch {
	case s.cfg.ExpiredTokenNoBody:
		body = ""
	case json.Valid([]byte(body)):
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	default:
		w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	}
	w.WriteHeader(s.cfg.ExpiredTokenStatus)
	_, _ = io.WriteString(w, body)
	return false
}

func sipPwd(workNo int32) string {
	return "Sp#" + strconv.Itoa(int(workNo)*7919%1000003)
}

func phonePwd(id int64) string {
	return "Ph#" + strconv.FormatInt(id*104729%1000003, 10)
}

type agentInfoEntry struct {
	WorkNo      any    `json:"workNo"`
	AccountCode string `json:"accountCode,omitempty"`
	SIPAccount  string `json:"sipAccount"`
	SIPPwd      string `json:"sipPwd"`
}

func (s *Sim) handleQueryAgentInfo(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	s.mu.RLock()
	list := make([]agentInfoEntry, 0, len(s.roster))
	order := slices.Clone(s.roster)
	slices.Sort(order)
	for _, wn := range order {
		a := s.agents[wn]
		list = append(list, agentInfoEntry{
			WorkNo: s.loose(int64(a.workNo)), AccountCode: a.accountCode,
			SIPAccount: a.sipAccount, SIPPwd: sipPwd(a.workNo),
		})
	}
	s.mu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"sipServiceIp":   sipServiceIP,
		"sipServicePort": s.loose(sipServicePort),
		"agents":         list,
	})
}

// flexInt reads a JSON number or numeric string; absent or null gives def.
func flexInt(raw json.RawMessage, def int) (int, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return def, true
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if i, err := strconv.Atoi(n.String()); err == nil {
			return i, true
		}
		return 0, false
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return 0, false
	}
	str = strings.TrimSpace(str)
	if str == "" {
		return def, true
	}
	i, err := strconv.Atoi(str)
	return i, err == nil
}

type phoneEntry struct {
	PhoneNum string `json:"phoneNum"`
	Password string `json:"password"`
	ID       any    `json:"id"`
	Status   any    `json:"status"`
	Remark   string `json:"remark"`
	TenantID string `json:"tenantId"`
	PartdbID string `json:"partdbId"`
}

func (s *Sim) handleQueryPhone(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var body struct {
		Limit  json.RawMessage `json:"limit"`
		Offset json.RawMessage `json:"offset"`
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"retCode": "1", "retMsg": "invalid request body"})
			return
		}
	}
	limit, ok1 := flexInt(body.Limit, 100)
	offset, ok2 := flexInt(body.Offset, 0)
	if !ok1 || !ok2 || offset < 0 {
		writeJSON(w, http.StatusOK, map[string]any{"retCode": "4", "retMsg": "the limit or offset is invalid"})
		return
	}
	limit = max(1, min(limit, 100))
	s.mu.RLock()
	total := len(s.phoneList)
	page := make([]phoneEntry, 0, limit)
	for i := offset; i < total && len(page) < limit; i++ {
		p := s.phoneList[i]
		page = append(page, phoneEntry{
			PhoneNum: p.num, Password: phonePwd(p.id), ID: s.loose(p.id),
			Status: s.loose(int64(p.status)), Remark: "", TenantID: tenantID, PartdbID: "1",
		})
	}
	s.mu.RUnlock()
	result := map[string]any{"total": s.loose(int64(total)), "phone": page}
	port := s.looseStr(strconv.Itoa(sipServicePort))
	if s.cfg.FlatRegServ {
		result["regIPAddress"] = regIPAddress
		result["regPort"] = port
	} else {
		result["singleRegServ"] = []map[string]any{{
			"regIPAddress": regIPAddress, "regPort": port,
			"sipServiceIp": sipServiceIP, "sipServicePort": s.looseStr(strconv.Itoa(sipServicePort)),
		}}
	}
	writeJSON(w, http.StatusOK, map[string]any{"retCode": "0", "retMsg": "successfully", "result": result})
}

func (s *Sim) handleQueryAgentInfoByAccount(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var body struct {
		AccountCode string `json:"accountCode"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&body); err != nil || body.AccountCode == "" {
		writeJSON(w, http.StatusOK, map[string]any{
			"returnCode": "1", "description": "accountCode is empty or invalid", "data": map[string]any{"workNo": ""},
		})
		return
	}
	s.mu.RLock()
	wn, ok := s.byAccount[body.AccountCode]
	var status string
	if ok {
		a := s.agents[wn]
		switch {
		case a.signedIdx < 0:
			status = "0"
		case len(a.calls) > 0:
			status = "7"
		default:
			status = "4"
		}
	}
	s.mu.RUnlock()
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{
			"returnCode": "1", "description": "the agent does not exist", "data": map[string]any{"workNo": ""},
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"returnCode":  "0",
		"description": "query success",
		"data": map[string]any{
			"workNo": s.loose(int64(wn)), "agentType": s.loose(4), "agentStatus": s.looseStr(status),
		},
	})
}
