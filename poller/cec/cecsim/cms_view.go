package cecsim

import (
	"slices"
	"time"
)

// cmsView is what the simulated CMS knows: a follower of the ground truth
// that applies each change once it is Config.CMS.Lag old, as a monitoring
// database fed from the CTI would. With no lag it catches up on every
// request, so it names the same calls as allcallinfoEx.
type cmsView struct {
	mu      chan struct{} // a one-slot lock, so a request can give up waiting when its client leaves
	applied uint64        // truth entries applied (the Seq of the last one)
	asOf    time.Time     // the instant the view describes
	agents  map[int32]*cmsAgent
}

// cmsAgent is one agent as CMS sees it. Times are unix nanoseconds to keep
// 60,000 of them small.
type cmsAgent struct {
	vdn     int32
	signed  bool
	state   int8
	prev    int8
	since   int64 // when state began
	prevDur int64 // how long prev lasted
	logon   int64 // 0 when not signed in
	calls   []cmsCall
}

type cmsCall struct {
	id     string
	status CallStatus
	dir    Direction
}

// newCMSViewLocked seeds the view with the initial world, which the ground
// truth does not record.
func (s *Sim) newCMSViewLocked() *cmsView {
	now := time.Now()
	v := &cmsView{mu: make(chan struct{}, 1), agents: make(map[int32]*cmsAgent, len(s.agents)), asOf: now}
	for wn, a := range s.agents {
		ca := &cmsAgent{vdn: a.vdn, since: now.UnixNano()}
		if a.signedIdx >= 0 {
			ca.signed, ca.logon, ca.state = true, now.UnixNano(), stateIdle
		}
		v.agents[wn] = ca
	}
	v.applied = s.truthSeq
	return v
}

// syncLocked applies every change recorded at or before cutoff; the
// caller holds v.mu.
func (s *Sim) syncCMSLocked(v *cmsView, cutoff time.Time) {
	s.mu.RLock()
	pending := s.truth[v.applied:] // entries are never modified once recorded
	s.mu.RUnlock()
	for i := range pending {
		c := &pending[i]
		if c.At.After(cutoff) {
			break
		}
		s.applyCMS(v, c)
		v.applied = c.Seq
	}
	if cutoff.After(v.asOf) {
		v.asOf = cutoff
	}
}

func (s *Sim) applyCMS(v *cmsView, c *Change) {
	wn := int32(c.WorkNo)
	at := c.At.UnixNano()
	if c.Kind == KindAgentAdded {
		v.agents[wn] = &cmsAgent{vdn: s.vdnOf(c.WorkNo), since: at}
		return
	}
	a := v.agents[wn]
	if a == nil {
		return
	}
	switch c.Kind {
	case KindAgentRemoved:
		delete(v.agents, wn)
		return
	case KindSignedIn:
		a.signed, a.logon = true, at
	case KindSignedOut:
		a.signed, a.logon, a.calls = false, 0, nil
	case KindCallAdded:
		st, _ := ParseCallStatus(c.After)
		dir, _ := ParseDirection(c.Direction)
		a.calls = append(a.calls, cmsCall{id: c.CallID, status: st, dir: dir})
	case KindCallStatus:
		if i := slices.IndexFunc(a.calls, func(x cmsCall) bool { return x.id == c.CallID }); i >= 0 {
			a.calls[i].status, _ = ParseCallStatus(c.After)
		}
	case KindCallRemoved:
		a.calls = slices.DeleteFunc(a.calls, func(x cmsCall) bool { return x.id == c.CallID })
		if len(a.calls) == 0 {
			a.calls = nil
		}
	default:
		return
	}
	statuses := make([]CallStatus, len(a.calls))
	for i, x := range a.calls {
		statuses[i] = x.status
	}
	if st := agentStateOf(a.signed, statuses); st != a.state {
		a.prev, a.prevDur, a.state, a.since = a.state, at-a.since, st, at
	}
}

// withCMSView runs fn on the view brought up to now minus the lag. It
// reports false when done closes first.
func (s *Sim) withCMSView(done <-chan struct{}, fn func(v *cmsView)) bool {
	v := s.cms
	select {
	case v.mu <- struct{}{}:
	case <-done:
		return false
	}
	defer func() { <-v.mu }()
	s.syncCMSLocked(v, time.Now().Add(-s.CMSLag()))
	fn(v)
	return true
}

// SetCMSLag sets how far CMS data trails the gateway's view. Raising it
// holds the CMS view still until it is that far behind; nothing already
// seen is taken back.
func (s *Sim) SetCMSLag(d time.Duration) { s.cmsLag.Store(int64(max(d, 0))) }

// CMSLag returns the current CMS data lag.
func (s *Sim) CMSLag() time.Duration { return time.Duration(s.cmsLag.Load()) }

// SetCMSLicensed switches the CMS licence: unlicensed, every CMS call
// answers 0100003.
func (s *Sim) SetCMSLicensed(ok bool) { s.cmsUnlicensed.Store(!ok) }

// CMSLicensed reports whether CMS calls are served.
func (s *Sim) CMSLicensed() bool { return !s.cmsUnlicensed.Load() }

// SetCMSClientRefused switches the refusal of the client: refused, every
// CMS call answers HTTP 403, as for a host outside the IP whitelist.
func (s *Sim) SetCMSClientRefused(refused bool) { s.cmsNoClient.Store(refused) }

// CMSClientRefused reports whether CMS refuses the client.
func (s *Sim) CMSClientRefused() bool { return s.cmsNoClient.Load() }
