package subscriber

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// The requests of the seven endpoints: six read the view (viewQuery), one
// asks the vendor.

// agentCallsQuery is an agent.calls request. max_age can send it to the
// vendor.
type agentCallsQuery struct{ schemas.AgentCallsRequest }

func (q *agentCallsQuery) decode(data []byte) (err error) {
	q.AgentCallsRequest, err = decodeAgentCalls(data)
	return err
}

func (q *agentCallsQuery) check() error { return checkWorkNo(q.WorkNo) }

func (q *agentCallsQuery) options() readOptions {
	return readOptions{minSeq: q.MinSeq, wait: q.Wait, asOf: q.AsOf, maxAge: q.MaxAge}
}

func (q *agentCallsQuery) past(s *Service, tenant string, at time.Time) runFunc {
	return s.pastAgentCalls(at, tenant, q.AgentCallsRequest)
}

func (q *agentCallsQuery) read(ctx context.Context, s *Service, tenant string, r liveRead) (any, error) {
	resp, obs, found := s.view.agentCalls(tenant, q.WorkNo)
	if r.maxAge >= 0 && (!found || time.Since(time.Unix(0, obs)) > r.maxAge) {
		if r.inline {
			return nil, errWouldBlock
		}
		lr, err := s.fetchCalls(ctx, tenant, q.WorkNo)
		if err != nil {
			return nil, err
		}
		resp.CallIDs = lr.ids
		if resp.CallIDs == nil {
			resp.CallIDs = []string{}
		}
		resp.Observed, resp.Live, resp.Visible = &lr.at, true, true
		return resp, nil
	}
	return answerEntity(resp, found, resp.Visible, q.RequireVisible, "agent calls")
}

// agentSoftphoneQuery is an agent.softphone request.
type agentSoftphoneQuery struct{ schemas.AgentSoftphoneRequest }

func (q *agentSoftphoneQuery) decode(data []byte) (err error) {
	q.AgentSoftphoneRequest, err = decodeAgentSoftphone(data)
	return err
}

func (q *agentSoftphoneQuery) check() error { return checkWorkNo(q.WorkNo) }

func (q *agentSoftphoneQuery) options() readOptions {
	return readOptions{minSeq: q.MinSeq, wait: q.Wait, asOf: q.AsOf}
}

func (q *agentSoftphoneQuery) past(s *Service, tenant string, at time.Time) runFunc {
	return s.pastAgentSoftphone(at, tenant, q.AgentSoftphoneRequest)
}

func (q *agentSoftphoneQuery) read(_ context.Context, s *Service, tenant string, _ liveRead) (any, error) {
	resp, found := s.view.agentSoftphone(tenant, q.WorkNo)
	return answerEntity(resp, found, resp.Visible, q.RequireVisible, "agent softphone")
}

// agentStateQuery is an agent.state request.
type agentStateQuery struct{ schemas.AgentStateRequest }

func (q *agentStateQuery) decode(data []byte) (err error) {
	q.AgentStateRequest, err = decodeAgentState(data)
	return err
}

func (q *agentStateQuery) check() error { return checkWorkNo(q.WorkNo) }

func (q *agentStateQuery) options() readOptions {
	return readOptions{minSeq: q.MinSeq, wait: q.Wait, asOf: q.AsOf}
}

func (q *agentStateQuery) past(s *Service, tenant string, at time.Time) runFunc {
	return s.pastAgentState(at, tenant, q.AgentStateRequest)
}

func (q *agentStateQuery) read(_ context.Context, s *Service, tenant string, _ liveRead) (any, error) {
	resp, found := s.view.agentCTIState(tenant, q.WorkNo)
	if !found {
		return nil, errNoAgentState("")
	}
	return answerEntity(resp, true, resp.Visible, q.RequireVisible, "agent state")
}

// errNoAgentState is the 404 of agent.state, which says where agent state
// comes from: a caller of a tenant without CMS learns why there is none.
// when is "" for now, " at as_of" for the past.
func errNoAgentState(when string) error {
	return fail(schemas.CodeNotFound, "agent state not known"+when+": it comes only from a CMS sweep (a tenant cms block), which has not reported this agent")
}

// phoneStateQuery is a phone.state request.
type phoneStateQuery struct{ schemas.PhoneStateRequest }

func (q *phoneStateQuery) decode(data []byte) (err error) {
	q.PhoneStateRequest, err = decodePhoneState(data)
	return err
}

func (q *phoneStateQuery) check() error { return checkToken("phone_num", q.PhoneNum) }

func (q *phoneStateQuery) options() readOptions {
	return readOptions{minSeq: q.MinSeq, wait: q.Wait, asOf: q.AsOf}
}

func (q *phoneStateQuery) past(s *Service, tenant string, at time.Time) runFunc {
	return s.pastPhoneState(at, tenant, q.PhoneStateRequest)
}

func (q *phoneStateQuery) read(_ context.Context, s *Service, tenant string, _ liveRead) (any, error) {
	resp, found := s.view.phoneState(tenant, q.PhoneNum)
	return answerEntity(resp, found, resp.Visible, q.RequireVisible, "phone")
}

// agentsListQuery is an agents.list request; after is the work number its
// cursor names (0 for the first page).
type agentsListQuery struct {
	schemas.AgentsListRequest
	after int
}

func (q *agentsListQuery) decode(data []byte) error { return decodeStrict(data, &q.AgentsListRequest) }

func (q *agentsListQuery) check() error {
	if err := checkPage(&q.ListRequest); err != nil {
		return err
	}
	if q.Cursor != "" {
		n, err := strconv.Atoi(q.Cursor)
		if err != nil || schemas.ValidWorkNo(n) != nil {
			return badRequest("invalid cursor")
		}
		q.after = n
	}
	return nil
}

func (q *agentsListQuery) options() readOptions {
	return readOptions{minSeq: q.MinSeq, wait: q.Wait, asOf: q.AsOf}
}

func (q *agentsListQuery) past(s *Service, tenant string, at time.Time) runFunc {
	return s.pastAgentsList(at, tenant, q.AgentsListRequest, q.after)
}

func (q *agentsListQuery) read(_ context.Context, s *Service, tenant string, _ liveRead) (any, error) {
	return s.view.listAgents(tenant, q.after, q.Offset, q.Limit, q.InCall, q.Visible), nil
}

// phonesListQuery is a phones.list request.
type phonesListQuery struct{ schemas.PhonesListRequest }

func (q *phonesListQuery) decode(data []byte) error { return decodeStrict(data, &q.PhonesListRequest) }

func (q *phonesListQuery) check() error {
	if err := checkPage(&q.ListRequest); err != nil {
		return err
	}
	if q.Cursor != "" {
		return checkToken("cursor", q.Cursor)
	}
	return nil
}

func (q *phonesListQuery) options() readOptions {
	return readOptions{minSeq: q.MinSeq, wait: q.Wait, asOf: q.AsOf}
}

func (q *phonesListQuery) past(s *Service, tenant string, at time.Time) runFunc {
	return s.pastPhonesList(at, tenant, q.PhonesListRequest)
}

func (q *phonesListQuery) read(_ context.Context, s *Service, tenant string, _ liveRead) (any, error) {
	return s.view.listPhones(tenant, q.Cursor, q.Offset, q.Limit, q.Registered, q.Visible), nil
}

// parseAgentByAccount parses an agent.by_account request: the vendor's
// answer, through a short-lived cache; the view plays no part.
func parseAgentByAccount(s *Service, tenant string, data []byte) (runFunc, error) {
	var r schemas.AgentByAccountRequest
	if err := decodeStrict(data, &r); err != nil {
		return nil, err
	}
	if err := checkAccount(r.Account); err != nil {
		return nil, err
	}
	maxAge, err := parseMaxAge(r.MaxAge)
	if err != nil {
		return nil, err
	}
	if maxAge < 0 {
		maxAge = math.MaxInt64
	}
	return func(ctx context.Context, inline bool) (any, error) {
		e, ok := s.accounts.get(tenant, r.Account, maxAge)
		live := false
		if !ok {
			if inline {
				return nil, errWouldBlock
			}
			var ferr error
			if e, ferr = s.fetchAccount(ctx, tenant, r.Account); ferr != nil {
				return nil, ferr
			}
			live = true
		}
		return schemas.AgentByAccountResponse{Tenant: tenant, Account: r.Account, WorkNo: e.acc.WorkNo,
			AgentType: e.acc.AgentType, AgentStatus: e.acc.AgentStatus, StreamSeq: s.view.Applied(),
			Observed: e.at, Live: live}, nil
	}, nil
}
