package subscriber

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// Lookups as of a past instant (the as_of option) are answered from the
// events stream, not from the live view: a throw-away view of the tenant is
// filled with the state of the entities concerned at that instant (see
// history) and read with the same methods as the live one, so an answer
// for the past has the shape and the rules of an answer for now.

// pastTimeout bounds the rebuild of one as_of answer.
const pastTimeout = schemas.MaxWait

// parseAsOf reads the as_of option. live says the request also set an
// option about the live view (min_seq, wait, max_age), which as_of excludes.
func parseAsOf(asOf string, live bool) (time.Time, error) {
	at, err := time.Parse(time.RFC3339Nano, asOf)
	if err != nil {
		return time.Time{}, badRequest("as_of must be an RFC 3339 instant")
	}
	if at.After(time.Now()) {
		return time.Time{}, badRequest("as_of is in the future")
	}
	if live {
		return time.Time{}, badRequest("as_of excludes min_seq, wait and max_age")
	}
	return at, nil
}

// past turns a rebuild into a runFunc: it never runs inline (it asks the
// server), and its errors map onto the documented codes.
func (s *Service) past(at time.Time, fn func(ctx context.Context, h *history, p point) (any, error)) runFunc {
	return func(ctx context.Context, inline bool) (any, error) {
		if inline {
			return nil, errWouldBlock
		}
		ctx, cancel := context.WithTimeout(ctx, pastTimeout)
		defer cancel()
		h := &history{nc: s.nc, events: s.view.cfg.EventsStream, state: s.view.cfg.StateStream}
		defer h.close()
		p, err := h.locate(ctx, at)
		if err == nil {
			var resp any
			if resp, err = fn(ctx, h, p); err == nil {
				return resp, nil
			}
		}
		var le *lookupError
		var br *errBeforeRetention
		switch {
		case errors.As(err, &le):
			return nil, err
		case errors.As(err, &br):
			return nil, fail(schemas.CodeNotVisible, br.Error())
		case s.ctx.Err() != nil:
			return nil, fail(schemas.CodeUnavailable, "service stopping")
		case ctx.Err() != nil:
			return nil, fail(schemas.CodeTimeout, "as_of answer not rebuilt within "+pastTimeout.String())
		default:
			s.log.Warn("as_of lookup failed", "err", err)
			return nil, fail(schemas.CodeUnavailable, "events history not readable")
		}
	}
}

func (p point) asOf(src source) *schemas.AsOf {
	return &schemas.AsOf{At: p.at.UTC(), RetainedFrom: p.retainedFrom.UTC(), EventID: src.id, EventStreamSeq: src.streamSeq, From: src.from}
}

// entity rebuilds a tenant's visibility and the given subjects at p.
func (h *history) entity(ctx context.Context, p point, tenant string, subjects ...string) (*View, map[string]source, error) {
	pv := newPastView(tenant, p.upTo)
	if err := h.visibility(ctx, pv, p, tenant); err != nil {
		return nil, nil, err
	}
	src, err := h.rebuild(ctx, pv, p, subjects)
	return pv, src, err
}

// pastEntity answers a lookup about one entity at a past instant: read
// takes the answer out of the rebuilt view and returns its Meta (found
// false is 404). what names the entity in error descriptions.
func (s *Service) pastEntity(at time.Time, tenant, subject, what string, requireVisible bool,
	read func(ctx context.Context, h *history, p point, pv *View) (resp any, meta *schemas.Meta, found bool, err error)) runFunc {
	return s.past(at, func(ctx context.Context, h *history, p point) (any, error) {
		pv, src, err := h.entity(ctx, p, tenant, subject)
		if err != nil {
			return nil, err
		}
		resp, meta, found, err := read(ctx, h, p, pv)
		if err != nil {
			return nil, err
		}
		if err := checkEntity(found, found && meta.Visible, requireVisible, what, " at as_of"); err != nil {
			return nil, err
		}
		meta.AsOf = p.asOf(src[subject])
		return resp, nil
	})
}

func (s *Service) pastAgentCalls(at time.Time, tenant string, r schemas.AgentCallsRequest) runFunc {
	subj := schemas.AgentCallsSubject(tenant, r.WorkNo)
	return s.pastEntity(at, tenant, subj, "agent calls", r.RequireVisible, func(_ context.Context, _ *history, _ point, pv *View) (any, *schemas.Meta, bool, error) {
		resp, _, found := pv.agentCalls(tenant, r.WorkNo)
		return &resp, &resp.Meta, found, nil
	})
}

func (s *Service) pastAgentSoftphone(at time.Time, tenant string, r schemas.AgentSoftphoneRequest) runFunc {
	subj := schemas.AgentSoftphoneSubject(tenant, r.WorkNo)
	return s.pastEntity(at, tenant, subj, "agent softphone", r.RequireVisible, func(ctx context.Context, h *history, p point, pv *View) (any, *schemas.Meta, bool, error) {
		resp, found := pv.agentSoftphone(tenant, r.WorkNo)
		if found && resp.SIPAccount != "" {
			// The phone the agent was bound to, as it stood then.
			if _, err := h.rebuild(ctx, pv, p, []string{schemas.PhoneStateSubject(tenant, resp.SIPAccount)}); err != nil {
				return nil, nil, false, err
			}
			resp, _ = pv.agentSoftphone(tenant, r.WorkNo)
		}
		return &resp, &resp.Meta, found, nil
	})
}

func (s *Service) pastAgentState(at time.Time, tenant string, r schemas.AgentStateRequest) runFunc {
	subj := schemas.AgentStateSubject(tenant, r.WorkNo)
	return s.pastEntity(at, tenant, subj, "agent state", r.RequireVisible, func(_ context.Context, _ *history, _ point, pv *View) (any, *schemas.Meta, bool, error) {
		resp, found := pv.agentCTIState(tenant, r.WorkNo)
		if !found {
			return nil, nil, false, errNoAgentState(" at as_of")
		}
		return &resp, &resp.Meta, found, nil
	})
}

func (s *Service) pastPhoneState(at time.Time, tenant string, r schemas.PhoneStateRequest) runFunc {
	subj := schemas.PhoneStateSubject(tenant, r.PhoneNum)
	return s.pastEntity(at, tenant, subj, "phone", r.RequireVisible, func(_ context.Context, _ *history, _ point, pv *View) (any, *schemas.Meta, bool, error) {
		resp, found := pv.phoneState(tenant, r.PhoneNum)
		return &resp, &resp.Meta, found, nil
	})
}

// pastAgentsPerRebuild is how many agents (two subjects each) one rebuild
// step covers while a list page fills.
const pastAgentsPerRebuild = multiLastMax / 2

func (s *Service) pastAgentsList(at time.Time, tenant string, r schemas.AgentsListRequest, after int) runFunc {
	return s.past(at, func(ctx context.Context, h *history, p point) (any, error) {
		pv, _, err := h.entity(ctx, p, tenant)
		if err != nil {
			return nil, err
		}
		// Every agent the stream ever described is known to the live view
		// (CEC_STATE keeps a subject for good), deleted ones included.
		nums := s.view.agentsAfter(tenant, after)
		var resp schemas.AgentsListResponse
		for {
			chunk := nums[:min(len(nums), pastAgentsPerRebuild)]
			nums = nums[len(chunk):]
			subjects := make([]string, 0, 2*len(chunk))
			for _, n := range chunk {
				subjects = append(subjects, schemas.AgentCallsSubject(tenant, n), schemas.AgentSoftphoneSubject(tenant, n))
			}
			if _, err := h.rebuild(ctx, pv, p, subjects); err != nil {
				return nil, err
			}
			// A page with a next cursor is complete: every agent before
			// the cursor has been rebuilt.
			resp = pv.listAgents(tenant, after, r.Offset, r.Limit, r.InCall, r.Visible)
			if resp.NextCursor != "" || len(nums) == 0 {
				break
			}
		}
		resp.AsOf = p.asOf(source{})
		return resp, nil
	})
}

func (s *Service) pastPhonesList(at time.Time, tenant string, r schemas.PhonesListRequest) runFunc {
	return s.past(at, func(ctx context.Context, h *history, p point) (any, error) {
		pv, _, err := h.entity(ctx, p, tenant)
		if err != nil {
			return nil, err
		}
		nums := s.view.phonesAfter(tenant, r.Cursor)
		var resp schemas.PhonesListResponse
		for {
			chunk := nums[:min(len(nums), multiLastMax)]
			nums = nums[len(chunk):]
			subjects := make([]string, len(chunk))
			for i, n := range chunk {
				subjects[i] = schemas.PhoneStateSubject(tenant, n)
			}
			if _, err := h.rebuild(ctx, pv, p, subjects); err != nil {
				return nil, err
			}
			resp = pv.listPhones(tenant, r.Cursor, r.Offset, r.Limit, r.Registered, r.Visible)
			if resp.NextCursor != "" || len(nums) == 0 {
				break
			}
		}
		resp.AsOf = p.asOf(source{})
		return resp, nil
	})
}

// agentsAfter lists the work numbers the view knows in a tenant, in order,
// past after.
func (v *View) agentsAfter(tenant string, after int) []int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if ts := v.tenants[tenant]; ts != nil {
		return sortedAfter(ts.agentOrder, after)
	}
	return nil
}

// phonesAfter lists the phone numbers the view knows in a tenant, in
// order, past after ("" for all).
func (v *View) phonesAfter(tenant, after string) []string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if ts := v.tenants[tenant]; ts != nil {
		return sortedAfter(ts.phoneOrder, after)
	}
	return nil
}

// sortedAfter copies the part of a sorted list after a value.
func sortedAfter[T cmp.Ordered](sorted []T, after T) []T {
	i, found := slices.BinarySearch(sorted, after)
	if found {
		i++
	}
	return slices.Clone(sorted[i:])
}
