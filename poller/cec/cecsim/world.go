package cecsim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Errors returned by the scripting methods; match them with errors.Is.
var (
	ErrUnknownAgent = errors.New("cecsim: unknown agent")
	ErrAgentExists  = errors.New("cecsim: agent already exists")
	ErrNotSignedIn  = errors.New("cecsim: agent not signed in")
	ErrCallLimit    = errors.New("cecsim: agent holds the maximum number of calls")
	ErrUnknownCall  = errors.New("cecsim: unknown call")
	ErrUnknownPhone = errors.New("cecsim: unknown phone")
	ErrBadValue     = errors.New("cecsim: bad value")
)

// Change kinds recorded in the ground truth.
const (
	KindCallAdded    = "call_added"
	KindCallRemoved  = "call_removed"
	KindSoftphone    = "softphone"
	KindPhoneStatus  = "phone_status"
	KindAgentAdded   = "agent_added"
	KindAgentRemoved = "agent_removed"
	KindSignedIn     = "signed_in"
	KindSignedOut    = "signed_out"
	KindPhoneAdded   = "phone_added"
	KindPhoneRemoved = "phone_removed"
	KindCallStatus   = "call_status"
)

// Change is one true change of the simulated world, recorded at the instant
// the simulator applies it (from then on every gateway and Fabric answer
// reflects it; CMS answers after Config.CMS.Lag). Softphone changes carry
// "sipAccount|accountCode" in Before/After, phone status changes "0"/"1".
// Call changes carry call statuses by name ("alerting", "talking",
// "held"): call_added the first in After, call_status the old and new,
// call_removed the last in Before; call_added also carries the Direction.
type Change struct {
	Seq       uint64    `json:"seq"`
	At        time.Time `json:"at"`
	Kind      string    `json:"kind"`
	WorkNo    int       `json:"work_no,omitempty"`
	PhoneNum  string    `json:"phone_num,omitempty"`
	CallID    string    `json:"call_id,omitempty"`
	Before    string    `json:"before,omitempty"`
	After     string    `json:"after,omitempty"`
	Direction string    `json:"direction,omitempty"`
}

// agent is one roster entry; kept small because a tenant may hold 60,000.
type agent struct {
	workNo      int32
	vdn         int32
	rosterIdx   int32 // position in world.roster
	signedIdx   int32 // position in world.signed, -1 when signed out
	sipAccount  string
	accountCode string
	calls       []string
}

type phone struct {
	num    string
	id     int64
	status int8
}

type call struct {
	id     string
	workNo int32
	status CallStatus
	dir    Direction
	caller int64
	called int64
	begin  time.Time
}

// AgentInfo is the current truth about one roster agent. State is the CTI
// agent state CMS reports (without CMS lag).
type AgentInfo struct {
	WorkNo      int          `json:"work_no"`
	VDN         int          `json:"vdn"`
	SignedIn    bool         `json:"signed_in"`
	SIPAccount  string       `json:"sip_account"`
	AccountCode string       `json:"account_code,omitempty"`
	Calls       []string     `json:"calls"`
	CallDetails []CallDetail `json:"call_details,omitempty"`
	State       int          `json:"state"`
}

// CallDetail is one call's status and direction, by name.
type CallDetail struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Direction string `json:"direction"`
}

// PhoneInfo is the current truth about one softphone number.
type PhoneInfo struct {
	PhoneNum string `json:"phone_num"`
	ID       int64  `json:"id"`
	Status   int    `json:"status"`
}

// All world mutators below run with s.mu held for writing.

func (s *Sim) record(c Change) {
	s.truthSeq++
	c.Seq = s.truthSeq
	c.At = time.Now()
	s.truth = append(s.truth, c)
}

func (s *Sim) vdnOf(workNo int) int32 {
	if s.cfg.AgentsPerVDN == 0 || workNo < s.cfg.FirstWorkNo {
		return 1
	}
	return int32(1 + (workNo-s.cfg.FirstWorkNo)/s.cfg.AgentsPerVDN)
}

func defaultSIP(workNo int) string { return "8888" + strconv.Itoa(workNo) }

// addAgentLocked inserts an agent; rec says whether to record truth (false
// while building the initial world).
func (s *Sim) addAgentLocked(workNo int, withAccount, signedIn, rec bool) *agent {
	a := &agent{
		workNo:     int32(workNo),
		vdn:        s.vdnOf(workNo),
		rosterIdx:  int32(len(s.roster)),
		signedIdx:  -1,
		sipAccount: defaultSIP(workNo),
	}
	if withAccount {
		a.accountCode = "acct" + strconv.Itoa(workNo)
		s.byAccount[a.accountCode] = a.workNo
	}
	s.agents[a.workNo] = a
	s.roster = append(s.roster, a.workNo)
	if workNo >= s.nextWorkNo {
		s.nextWorkNo = workNo + 1
	}
	if rec {
		s.record(Change{Kind: KindAgentAdded, WorkNo: workNo})
	}
	s.ensurePhoneLocked(a.sipAccount, rec)
	if signedIn {
		s.signInLocked(a, rec)
	}
	return a
}

func (s *Sim) ensurePhoneLocked(num string, rec bool) {
	if _, ok := s.phones[num]; ok {
		return
	}
	s.phoneSeq++
	p := &phone{num: num, id: s.phoneSeq}
	s.phones[num] = p
	s.phoneList = append(s.phoneList, p)
	if rec {
		s.record(Change{Kind: KindPhoneAdded, PhoneNum: num, After: "0"})
	}
}

func (s *Sim) removePhoneLocked(num string) {
	p, ok := s.phones[num]
	if !ok {
		return
	}
	delete(s.phones, num)
	// phoneList is ordered by id, so the position is found by binary search.
	i, found := slices.BinarySearchFunc(s.phoneList, p.id, func(q *phone, id int64) int {
		switch {
		case q.id < id:
			return -1
		case q.id > id:
			return 1
		}
		return 0
	})
	if found {
		s.phoneList = slices.Delete(s.phoneList, i, i+1)
	}
	s.record(Change{Kind: KindPhoneRemoved, PhoneNum: num, Before: strconv.Itoa(int(p.status))})
}

func (s *Sim) signInLocked(a *agent, rec bool) {
	if a.signedIdx >= 0 {
		return
	}
	a.signedIdx = int32(len(s.signed))
	s.signed = append(s.signed, a.workNo)
	if rec {
		s.record(Change{Kind: KindSignedIn, WorkNo: int(a.workNo)})
	}
}

func (s *Sim) signOutLocked(a *agent) {
	if a.signedIdx < 0 {
		return
	}
	for len(a.calls) > 0 {
		s.endCallLocked(a, a.calls[0])
	}
	last := s.signed[len(s.signed)-1]
	s.signed[a.signedIdx] = last
	s.agents[last].signedIdx = a.signedIdx
	s.signed = s.signed[:len(s.signed)-1]
	a.signedIdx = -1
	s.record(Change{Kind: KindSignedOut, WorkNo: int(a.workNo)})
}

func (s *Sim) removeAgentLocked(a *agent) {
	s.signOutLocked(a)
	last := s.roster[len(s.roster)-1]
	s.roster[a.rosterIdx] = last
	s.agents[last].rosterIdx = a.rosterIdx
	s.roster = s.roster[:len(s.roster)-1]
	delete(s.agents, a.workNo)
	if a.accountCode != "" && s.byAccount[a.accountCode] == a.workNo {
		delete(s.byAccount, a.accountCode)
	}
	s.record(Change{Kind: KindAgentRemoved, WorkNo: int(a.workNo)})
	// The agent's softphone number is released with it unless another agent
	// is bound to it.
	if !s.phoneBoundLocked(a.sipAccount) {
		s.removePhoneLocked(a.sipAccount)
	}
}

func (s *Sim) phoneBoundLocked(num string) bool {
	for _, wn := range s.roster {
		if s.agents[wn].sipAccount == num {
			return true
		}
	}
	return false
}

func (s *Sim) startCallLocked(a *agent, st CallStatus, dir Direction) string {
	s.callSeq++
	id := strconv.FormatInt(time.Now().Unix(), 10) + "-" + strconv.FormatUint(s.callSeq, 10)
	c := &call{
		id:     id,
		workNo: a.workNo,
		status: st,
		dir:    dir,
		caller: 13800000000 + int64(s.callSeq%100000000),
		called: 4000000 + int64(a.workNo),
		begin:  time.Now(),
	}
	s.calls[id] = c
	a.calls = append(a.calls, id)
	s.record(Change{Kind: KindCallAdded, WorkNo: int(a.workNo), CallID: id, After: st.String(), Direction: dir.String()})
	s.sessionCallEventLocked(a.workNo, c, true)
	return id
}

func (s *Sim) endCallLocked(a *agent, id string) bool {
	i := slices.Index(a.calls, id)
	if i < 0 {
		return false
	}
	a.calls = slices.Delete(a.calls, i, i+1)
	if len(a.calls) == 0 {
		a.calls = nil // release the backing array: most agents are idle
	}
	c := s.calls[id]
	delete(s.calls, id)
	last := ""
	if c != nil {
		last = c.status.String()
	}
	s.record(Change{Kind: KindCallRemoved, WorkNo: int(a.workNo), CallID: id, Before: last})
	if c != nil {
		s.sessionCallEventLocked(a.workNo, c, false)
	}
	return true
}

func (s *Sim) setSoftphoneLocked(a *agent, sip, acct string) {
	before := a.sipAccount + "|" + a.accountCode
	after := sip + "|" + acct
	if before == after {
		return
	}
	s.ensurePhoneLocked(sip, true)
	if a.accountCode != "" && s.byAccount[a.accountCode] == a.workNo {
		delete(s.byAccount, a.accountCode)
	}
	a.sipAccount, a.accountCode = sip, acct
	if acct != "" {
		s.byAccount[acct] = a.workNo
	}
	s.record(Change{Kind: KindSoftphone, WorkNo: int(a.workNo), Before: before, After: after})
}

func (s *Sim) setPhoneStatusLocked(p *phone, status int) {
	if int(p.status) == status {
		return
	}
	before := strconv.Itoa(int(p.status))
	p.status = int8(status)
	s.record(Change{Kind: KindPhoneStatus, PhoneNum: p.num, Before: before, After: strconv.Itoa(status)})
}

func (s *Sim) agentLocked(workNo int) (*agent, error) {
	if workNo < 0 || workNo > 999999 {
		return nil, fmt.Errorf("%w %d", ErrUnknownAgent, workNo)
	}
	a, ok := s.agents[int32(workNo)]
	if !ok {
		return nil, fmt.Errorf("%w %d", ErrUnknownAgent, workNo)
	}
	return a, nil
}
