package subscriber

import (
	"slices"
	"strconv"

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
	ts := v.tenants[tenant]
	if ts == nil {
		return r, 0, false
	}
	a := ts.agents[workNo]
	if a == nil {
		return r, 0, false
	}
	r.Seq = a.callsSeq
	r.Visible = (a.lost|ts.lost)&lostCalls == 0
	if !a.hasCalls {
		return r, a.callsObs, false
	}
	if a.calls != nil {
		r.CallIDs = a.calls
	}
	r.Observed = nanosTime(a.callsObs)
	return r, a.callsObs, true
}

func (v *View) agentSoftphone(tenant string, workNo int) (r schemas.AgentSoftphoneResponse, found bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r = schemas.AgentSoftphoneResponse{Tenant: tenant, WorkNo: workNo}
	r.StreamSeq = v.applied
	ts := v.tenants[tenant]
	if ts == nil {
		return r, false
	}
	a := ts.agents[workNo]
	if a == nil || !a.hasSP {
		return r, false
	}
	r.Seq, r.Observed = a.spSeq, nanosTime(a.spObs)
	r.Visible = (a.lost|ts.lost)&lostSoftphone == 0
	r.SIPAccount, r.AccountCode = a.sp.SIPAccount, a.sp.AccountCode
	r.SIPServerIP, r.SIPServerPort = a.sp.SIPServerIP, a.sp.SIPServerPort
	if p := ts.phones[a.sp.SIPAccount]; a.sp.SIPAccount != "" && p != nil && p.exists {
		code := p.st.StatusCode
		r.PhoneStatus, r.PhoneStatusCode = p.st.Status, &code
		r.Registered = p.st.Status == schemas.PhoneRegistered
	}
	return r, true
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
	if p == nil || !p.exists {
		return r, false
	}
	r.Seq, r.Observed = p.seq, nanosTime(p.obs)
	r.Visible = ts.lost&lostPhones == 0
	r.Status, r.StatusCode, r.ConfigID = p.st.Status, p.st.StatusCode, p.st.ConfigID
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
		if !a.hasCalls && !a.hasSP {
			continue
		}
		in := len(a.calls) > 0
		vis := (a.lost|ts.lost)&(lostCalls|lostSoftphone) == 0
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
		s := schemas.AgentSummary{WorkNo: n, CallIDs: a.calls, InCall: in, SIPAccount: a.sp.SIPAccount,
			Visible: vis, CallsSeq: a.callsSeq, SoftphoneSeq: a.spSeq, Observed: nanosTime(max(a.callsObs, a.spObs))}
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
		if !p.exists {
			continue
		}
		if registered != nil && *registered != (p.st.Status == schemas.PhoneRegistered) {
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
		r.Phones = append(r.Phones, schemas.PhoneSummary{PhoneNum: num, Status: p.st.Status, StatusCode: p.st.StatusCode,
			Visible: vis, Seq: p.seq, Observed: nanosTime(p.obs)})
	}
	return r
}
