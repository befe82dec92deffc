package subscriber

import (
	"slices"
	"strconv"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// The read side of the view: each method copies what one answer needs under
// the read lock. Call-ID slices are shared, never copied: the writer replaces
// them instead of mutating them.

// agentCalls returns the agent's calls and whether the view knows them.
// obs is the raw observation instant (unix nanos) for max_age checks.
func (v *View) agentCalls(tenant string, workNo int) (r schemas.AgentCallsResponse, obs int64, found bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r = schemas.AgentCallsResponse{Tenant: tenant, WorkNo: workNo, CallIDs: []string{}}
	r.StreamSeq = v.applied
	ts, a := v.agentRLocked(tenant, workNo)
	if a == nil {
		return r, 0, false
	}
	r.Seq = a.calls.seq
	r.Visible = a.visible(ts, lostCalls)
	if !a.calls.has {
		return r, a.calls.obs, false
	}
	if a.calls.state.CallIDs != nil {
		r.CallIDs = a.calls.state.CallIDs
	}
	r.Observed = nanosTime(a.calls.obs)
	return r, a.calls.obs, true
}

func (v *View) agentSoftphone(tenant string, workNo int) (r schemas.AgentSoftphoneResponse, found bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r = schemas.AgentSoftphoneResponse{Tenant: tenant, WorkNo: workNo}
	r.StreamSeq = v.applied
	ts, a := v.agentRLocked(tenant, workNo)
	if a == nil || !a.softphone.has {
		return r, false
	}
	sp := &a.softphone.state
	r.Seq, r.Observed = a.softphone.seq, nanosTime(a.softphone.obs)
	r.Visible = a.visible(ts, lostSoftphone)
	r.SIPAccount, r.AccountCode = sp.SIPAccount, sp.AccountCode
	r.SIPServerIP, r.SIPServerPort = sp.SIPServerIP, sp.SIPServerPort
	if p := ts.phones[sp.SIPAccount]; sp.SIPAccount != "" && p != nil && p.has {
		code := p.state.StatusCode
		r.PhoneStatus, r.PhoneStatusCode = p.state.Status, &code
		r.Registered = p.state.Status == schemas.PhoneRegistered
	}
	return r, true
}

// agentCTIState returns the agent's state as its last agent.state event
// left it. Visible follows bridge.states_visibility, not the calls':
// only the CMS sweep observes a state, so per-agent polling that keeps the
// calls visible does not make the state so.
func (v *View) agentCTIState(tenant string, workNo int) (r schemas.AgentStateResponse, found bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r = schemas.AgentStateResponse{Tenant: tenant, WorkNo: workNo}
	r.StreamSeq = v.applied
	ts, a := v.agentRLocked(tenant, workNo)
	if a == nil || a.cti == nil || !a.cti.has {
		return r, false
	}
	r.AgentState = a.cti.state
	r.Seq, r.Observed = a.cti.seq, nanosTime(a.cti.obs)
	r.Visible = ts.stateVisible(workNo)
	return r, true
}

// agentRLocked is the agent a point lookup reads, with its tenant; a is
// nil when the view does not know it. Callers hold the read lock.
func (v *View) agentRLocked(tenant string, workNo int) (ts *tenantState, a *agentState) {
	if ts = v.tenants[tenant]; ts == nil {
		return nil, nil
	}
	return ts, ts.agents[workNo]
}

// visible says whether none of the scopes is lost for the agent, nor for
// its whole tenant.
func (a *agentState) visible(ts *tenantState, scopes uint8) bool {
	return (a.lost|ts.lost)&scopes == 0
}

func (v *View) phoneState(tenant, num string) (r schemas.PhoneStateResponse, found bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r = schemas.PhoneStateResponse{Tenant: tenant, PhoneNum: num}
	r.StreamSeq = v.applied
	ts := v.tenants[tenant]
	if ts == nil {
		return r, false
	}
	p := ts.phones[num]
	if p == nil || !p.has {
		return r, false
	}
	r.Seq, r.Observed = p.seq, nanosTime(p.obs)
	r.Visible = ts.lost&lostPhones == 0
	r.Status, r.StatusCode, r.ConfigID = p.state.Status, p.state.StatusCode, p.state.ConfigID
	return r, true
}

// listAgents pages through agents in work number order. after is the work
// number of the previous page's last agent (0 for the first page).
func (v *View) listAgents(tenant string, after, offset, limit int, inCall, visible *bool) schemas.AgentsListResponse {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r := schemas.AgentsListResponse{Tenant: tenant, StreamSeq: v.applied, Agents: []schemas.AgentSummary{}}
	ts := v.tenants[tenant]
	if ts == nil {
		return r
	}
	i, found := slices.BinarySearch(ts.agentOrder, after)
	if found {
		i++
	}
	for ; i < len(ts.agentOrder); i++ {
		n := ts.agentOrder[i]
		a := ts.agents[n]
		if !a.calls.has && !a.softphone.has {
			continue
		}
		in := len(a.calls.state.CallIDs) > 0
		vis := a.visible(ts, lostCalls|lostSoftphone)
		if inCall != nil && *inCall != in || visible != nil && *visible != vis {
			continue
		}
		if offset > 0 {
			offset--
			continue
		}
		if len(r.Agents) == limit {
			r.NextCursor = strconv.Itoa(r.Agents[len(r.Agents)-1].WorkNo)
			break
		}
		s := schemas.AgentSummary{WorkNo: n, CallIDs: a.calls.state.CallIDs, InCall: in, SIPAccount: a.softphone.state.SIPAccount,
			Visible: vis, CallsSeq: a.calls.seq, SoftphoneSeq: a.softphone.seq, Observed: nanosTime(max(a.calls.obs, a.softphone.obs))}
		if s.CallIDs == nil {
			s.CallIDs = []string{}
		}
		r.Agents = append(r.Agents, s)
	}
	return r
}

// listPhones pages through phones in number order, after the phone number
// given ("" for the first page).
func (v *View) listPhones(tenant, after string, offset, limit int, registered, visible *bool) schemas.PhonesListResponse {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r := schemas.PhonesListResponse{Tenant: tenant, StreamSeq: v.applied, Phones: []schemas.PhoneSummary{}}
	ts := v.tenants[tenant]
	if ts == nil {
		return r
	}
	i := 0
	if after != "" {
		var found bool
		i, found = slices.BinarySearch(ts.phoneOrder, after)
		if found {
			i++
		}
	}
	vis := ts.lost&lostPhones == 0
	if visible != nil && *visible != vis {
		return r
	}
	for ; i < len(ts.phoneOrder); i++ {
		num := ts.phoneOrder[i]
		p := ts.phones[num]
		if !p.has {
			continue
		}
		if registered != nil && *registered != (p.state.Status == schemas.PhoneRegistered) {
			continue
		}
		if offset > 0 {
			offset--
			continue
		}
		if len(r.Phones) == limit {
			r.NextCursor = r.Phones[len(r.Phones)-1].PhoneNum
			break
		}
		r.Phones = append(r.Phones, schemas.PhoneSummary{PhoneNum: num, Status: p.state.Status, StatusCode: p.state.StatusCode,
			Visible: vis, Seq: p.seq, Observed: nanosTime(p.obs)})
	}
	return r
}

func nanosTime(n int64) *time.Time {
	if n == 0 {
		return nil
	}
	t := time.Unix(0, n).UTC()
	return &t
}
