package cec

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Requests through a signed-in session: one CC-Gateway call, how its answer
// is classified, and the queries the bridge makes.

// gwCall performs one CC-Gateway request and classifies the answer. gen
// identifies the session generation allowed to adopt a rotated GUID (0 for
// none). A non-"0" retcode is an *Error carrying the code.
func (s *Session) gwCall(ctx context.Context, ep, method, path, guid string, gen uint64, body []byte, timeout time.Duration) (*gwEnvelope, *response, error) {
	c := s.c
	if c.gateway == "" {
		return nil, nil, &Error{Endpoint: ep, Message: "no GatewayURL configured", Err: ErrBadResponse}
	}
	hdr := map[string]string(nil)
	if guid != "" {
		hdr = map[string]string{"Guid": guid}
	}
	resp, err := c.do(ctx, request{endpoint: ep, method: method, url: c.gateway + gwBase + path, header: hdr, body: body, timeout: timeout})
	var env *gwEnvelope
	if err == nil {
		if gen != 0 {
			s.adoptGUID(gen, resp.header)
		}
		env, err = s.classify(ep, resp)
	}
	c.account(ctx, ep, resp, err)
	return env, resp, err
}

func (s *Session) classify(ep string, resp *response) (*gwEnvelope, error) {
	c := s.c
	env, derr := decodeGateway(resp.body)
	if resp.status != http.StatusOK && (derr != nil || resp.status >= 500 || resp.status == http.StatusTooManyRequests) {
		e := c.httpError(ep, resp)
		if errors.Is(e, ErrUnauthorized) {
			// The gateway has no tokens: a refusal means it no longer
			// accepts this GUID.
			e.Err = ErrSessionLost
		}
		return nil, e
	}
	if derr != nil {
		return nil, c.badResponse(ep, resp, derr)
	}
	code := env.code()
	if code == "0" {
		if resp.status != http.StatusOK {
			// A success code in an error answer is not an answer: "no
			// call" must never come from a request that failed.
			e := c.httpError(ep, resp)
			if errors.Is(e, ErrUnauthorized) {
				e.Err = ErrSessionLost
			}
			return nil, e
		}
		return env, nil
	}
	e := &Error{Endpoint: ep, HTTPStatus: resp.status, Code: code, Message: c.scrubMessage(env.message()), Err: ErrVendor}
	switch {
	case code == "000-007":
		e.Err = ErrRateLimited
		e.RetryAfter = parseRetryAfter(resp.header.Get("Retry-After"))
	case sessionLostCode(code):
		e.Err = ErrSessionLost
	case ep == epAllCallInfo && c.noCall[code]:
		// The tenant's way of saying "no call" (Config.NoCallCodes): an
		// answer, observed and reported as one.
		return env, nil
	}
	return env, e
}

// query sends a read-only request with the current GUID. A session-lost
// answer for a GUID that has been superseded in the meantime is a race with
// rotation, not a lost session: it is retried once with the new GUID.
// Otherwise the session is marked lost and the error says so.
func (s *Session) query(ctx context.Context, ep, path string) (*gwEnvelope, *response, error) {
	if err := s.c.waitBudget(ctx, ep); err != nil {
		return nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		guid, gen, st := s.current()
		if st != Ready {
			err := &Error{Endpoint: ep, Message: "session is " + st.String(), Err: ErrSessionNotReady}
			s.c.observe(ep, err, 0)
			return nil, nil, err
		}
		env, resp, err := s.gwCall(ctx, ep, http.MethodGet, path, guid, gen, nil, 0)
		if err != nil && errors.Is(err, ErrSessionLost) {
			now, nowGen, nowSt := s.current()
			if attempt == 0 && nowSt == Ready && (now != guid || nowGen != gen) {
				continue
			}
			s.markLost(gen)
		}
		return env, resp, err
	}
}

// AllCallInfo returns the sorted IDs of the calls agent workNo holds. An
// agent with no call yields an empty, non-nil slice and a nil error; a
// query that could not be answered is always an error.
func (s *Session) AllCallInfo(ctx context.Context, workNo int) ([]string, error) {
	const ep = epAllCallInfo
	env, resp, err := s.query(ctx, ep, "/calldata/"+s.idStr+"/allcallinfoEx/"+strconv.Itoa(workNo))
	if err != nil {
		return nil, err
	}
	if env.code() != "0" {
		return []string{}, nil // a configured no-call code (see classify)
	}
	ids, derr := decodeCallIDs(env.Result)
	if derr != nil {
		return nil, s.c.badResponse(ep, resp, derr)
	}
	return ids, nil
}

// AgentStatus returns the session agent's own state on the gateway.
func (s *Session) AgentStatus(ctx context.Context) (*AgentStatus, error) {
	const ep = "agentstatus"
	env, resp, err := s.query(ctx, ep, "/onlineagent/"+s.idStr+"/agentstatus")
	if err != nil {
		return nil, err
	}
	st, derr := decodeAgentStatus(env.Result)
	if derr != nil {
		return nil, s.c.badResponse(ep, resp, derr)
	}
	return st, nil
}

// CallInfo returns the details of one live call.
func (s *Session) CallInfo(ctx context.Context, callID string) (*CallInfo, error) {
	const ep = "callinfobycallid"
	env, resp, err := s.query(ctx, ep, "/calldata/"+s.idStr+"/callinfobycallid/"+url.PathEscape(callID))
	if err != nil {
		return nil, err
	}
	ci, derr := decodeCallInfo(env.Result)
	if derr != nil {
		return nil, s.c.badResponse(ep, resp, derr)
	}
	return ci, nil
}
