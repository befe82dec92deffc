package cecsim

import (
	"fmt"
	"slices"
)

// The world as tests and the control API change it and read it; each
// method takes the lock and calls the mutators of world.go.

// StartCall gives a signed-in agent a new inbound call, ringing
// (CallAlerting), and returns its ID ("<unix>-<n>"). It fails with
// ErrNotSignedIn or ErrUnknownAgent; the workload's MaxCallsPerAgent does
// not limit scripts. Move the call on with SetCallStatus.
func (s *Sim) StartCall(workNo int) (string, error) {
	return s.StartCallWith(workNo, CallAlerting, Inbound)
}

// EndCall ends one of the agent's calls; ErrUnknownCall if it holds no such call.
func (s *Sim) EndCall(workNo int, callID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.agentLocked(workNo)
	if err != nil {
		return err
	}
	if !s.endCallLocked(a, callID) {
		return fmt.Errorf("%w %q for agent %d", ErrUnknownCall, callID, workNo)
	}
	return nil
}

// SignIn signs the roster agent in (its modelled presence, not an API
// session). Signing in an agent already signed in is a no-op.
func (s *Sim) SignIn(workNo int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.agentLocked(workNo)
	if err != nil {
		return err
	}
	s.signInLocked(a, true)
	return nil
}

// SignOut signs the roster agent out, ending its calls first.
func (s *Sim) SignOut(workNo int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.agentLocked(workNo)
	if err != nil {
		return err
	}
	s.signOutLocked(a)
	return nil
}

// SetSoftphone rebinds the agent's softphone number and business account. A
// number not yet allocated is added to queryPhone's list; an empty
// accountCode removes the account.
func (s *Sim) SetSoftphone(workNo int, sipAccount, accountCode string) error {
	if sipAccount == "" {
		return fmt.Errorf("%w: empty sipAccount", ErrBadValue)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.agentLocked(workNo)
	if err != nil {
		return err
	}
	if other, ok := s.byAccount[accountCode]; ok && accountCode != "" && other != a.workNo {
		return fmt.Errorf("%w: account code in use by agent %d", ErrBadValue, other)
	}
	s.setSoftphoneLocked(a, sipAccount, accountCode)
	return nil
}

// SetPhoneStatus sets a softphone number's registration status (0
// registered, 1 suspended).
func (s *Sim) SetPhoneStatus(phoneNum string, status int) error {
	if status != 0 && status != 1 {
		return fmt.Errorf("%w: phone status %d", ErrBadValue, status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.phones[phoneNum]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownPhone, phoneNum)
	}
	s.setPhoneStatusLocked(p, status)
	return nil
}

// AddAgent adds a signed-out agent with the default softphone
// ("8888<workNo>") and account ("acct<workNo>").
func (s *Sim) AddAgent(workNo int) error {
	if workNo < 101 || workNo > 999999 {
		return fmt.Errorf("%w: agent ID %d outside 101..999999", ErrBadValue, workNo)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.agents[int32(workNo)]; ok {
		return fmt.Errorf("%w: %d", ErrAgentExists, workNo)
	}
	s.addAgentLocked(workNo, true, false, true)
	return nil
}

// RemoveAgent removes the agent (signing it out and ending its calls) and
// releases its softphone number unless another agent is bound to it.
func (s *Sim) RemoveAgent(workNo int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.agentLocked(workNo)
	if err != nil {
		return err
	}
	s.removeAgentLocked(a)
	return nil
}

// AgentCalls returns the agent's current call IDs, sorted (nil if none or
// unknown).
func (s *Sim) AgentCalls(workNo int) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, err := s.agentLocked(workNo)
	if err != nil || len(a.calls) == 0 {
		return nil
	}
	out := slices.Clone(a.calls)
	slices.Sort(out)
	return out
}

// Agents returns the work numbers of the current roster, sorted.
func (s *Sim) Agents() []int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]int, len(s.roster))
	for i, wn := range s.roster {
		out[i] = int(wn)
	}
	slices.Sort(out)
	return out
}

// Agent returns the current truth about one agent.
func (s *Sim) Agent(workNo int) (AgentInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, err := s.agentLocked(workNo)
	if err != nil {
		return AgentInfo{}, false
	}
	calls := slices.Clone(a.calls)
	slices.Sort(calls)
	details := make([]CallDetail, 0, len(calls))
	statuses := make([]CallStatus, 0, len(calls))
	for _, id := range calls {
		if c := s.calls[id]; c != nil {
			details = append(details, CallDetail{ID: id, Status: c.status.String(), Direction: c.dir.String()})
			statuses = append(statuses, c.status)
		}
	}
	return AgentInfo{
		WorkNo: int(a.workNo), VDN: int(a.vdn), SignedIn: a.signedIdx >= 0,
		SIPAccount: a.sipAccount, AccountCode: a.accountCode, Calls: calls,
		CallDetails: details, State: int(agentStateOf(a.signedIdx >= 0, statuses)),
	}, true
}

// Phones returns every allocated softphone number in queryPhone order.
func (s *Sim) Phones() []PhoneInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]PhoneInfo, len(s.phoneList))
	for i, p := range s.phoneList {
		out[i] = PhoneInfo{PhoneNum: p.num, ID: p.id, Status: int(p.status)}
	}
	return out
}

// Truth returns the recorded changes with Seq greater than sinceSeq.
func (s *Sim) Truth(sinceSeq uint64) []Change {
	s.mu.RLock()
	defer s.mu.RUnlock()
	// Seq n sits at index n-1.
	if sinceSeq >= uint64(len(s.truth)) {
		return nil
	}
	return slices.Clone(s.truth[sinceSeq:])
}
