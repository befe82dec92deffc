package subscriber

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cecbridge/cecbridge/schemas"
)

type endpoint struct {
	subject string
	desc    string
	parse   func(s *Service, tenant string, data []byte) (runFunc, error)
}

var endpoints = []endpoint{
	{schemas.LookupAgentCalls, "call IDs an agent holds, by work_no", parseAgentCalls},
	{schemas.LookupAgentSoftphone, "an agent's SIP account, SIP server and phone registration state", parseAgentSoftphone},
	{schemas.LookupAgentByAccount, "work_no, agent type and status for a sign-in account (vendor, cached)", parseAgentByAccount},
	{schemas.LookupPhoneState, "a softphone number's registration state", parsePhoneState},
	{schemas.LookupAgentsList, "agents in work_no order, paginated, filters in_call and visible", parseAgentsList},
	{schemas.LookupPhonesList, "phones in number order, paginated, filters registered and visible", parsePhonesList},
}

func badRequest(desc string) error { return fail(schemas.CodeBadRequest, desc) }

// decodeStrict decodes one JSON object, refusing unknown fields and trailing
// data. An empty body is an empty object.
func decodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			return badRequest("unknown field in request")
		}
		return badRequest("malformed JSON request")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("trailing data after JSON request")
	}
	return nil
}

func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return schemas.DefaultWait, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > schemas.MaxWait {
		return 0, badRequest("wait must be a duration in (0, 10s]")
	}
	return d, nil
}

// parseMaxAge returns -1 when max_age is absent.
func parseMaxAge(s string) (time.Duration, error) {
	if s == "" {
		return -1, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, badRequest("max_age must be a non-negative duration")
	}
	return d, nil
}

func checkWorkNo(n int) error {
	if schemas.ValidWorkNo(n) != nil {
		return badRequest("work_no missing or outside 101-999999")
	}
	return nil
}

// checkToken accepts a value that can be a subject token: 1 to 64 printable
// characters with no dot, wildcard or space.
func checkToken(field, v string) error {
	if v == "" || len(v) > 64 {
		return badRequest(field + " missing or longer than 64 bytes")
	}
	for _, r := range v {
		if r == '.' || r == '*' || r == '>' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return badRequest(field + " contains a dot, wildcard, space or control character")
		}
	}
	return nil
}

func checkAccount(v string) error {
	if v == "" || len(v) > 64 {
		return badRequest("account missing or longer than 64 bytes")
	}
	for _, r := range v {
		if r == '*' || r == '>' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return badRequest("account contains a wildcard, space or control character")
		}
	}
	return nil
}

func checkPage(l *schemas.ListRequest) error {
	if l.Limit < 0 || l.Limit > schemas.MaxListLimit {
		return badRequest("limit outside 0-1000")
	}
	if l.Limit == 0 {
		l.Limit = schemas.DefaultListLimit
	}
	if l.Offset < 0 || l.Offset > math.MaxInt32 {
		return badRequest("offset out of range")
	}
	if len(l.Cursor) > 256 {
		return badRequest("cursor too long")
	}
	return nil
}

func parseAgentCalls(s *Service, tenant string, data []byte) (runFunc, error) {
	r, err := decodeAgentCalls(data)
	if err != nil {
		return nil, err
	}
	if err := checkWorkNo(r.WorkNo); err != nil {
		return nil, err
	}
	if r.AsOf != "" {
		return s.pastAgentCalls(tenant, r)
	}
	wait, err := parseWait(r.Wait)
	if err != nil {
		return nil, err
	}
	maxAge, err := parseMaxAge(r.MaxAge)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, inline bool) (any, error) {
		if err := s.awaitSeq(ctx, r.MinSeq, wait, inline); err != nil {
			return nil, err
		}
		resp, obs, found := s.view.agentCalls(tenant, r.WorkNo)
		if maxAge >= 0 && (!found || time.Since(time.Unix(0, obs)) > maxAge) {
			if inline {
				return nil, errWouldBlock
			}
			lr, err := s.fetchCalls(ctx, tenant, r.WorkNo)
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
		if !found {
			return nil, fail(schemas.CodeNotFound, "agent calls not known")
		}
		if r.RequireVisible && !resp.Visible {
			return nil, fail(schemas.CodeNotVisible, "agent calls not visible")
		}
		return resp, nil
	}, nil
}

func parseAgentSoftphone(s *Service, tenant string, data []byte) (runFunc, error) {
	r, err := decodeAgentSoftphone(data)
	if err != nil {
		return nil, err
	}
	if err := checkWorkNo(r.WorkNo); err != nil {
		return nil, err
	}
	if r.AsOf != "" {
		return s.pastAgentSoftphone(tenant, r)
	}
	wait, err := parseWait(r.Wait)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, inline bool) (any, error) {
		if err := s.awaitSeq(ctx, r.MinSeq, wait, inline); err != nil {
			return nil, err
		}
		resp, found := s.view.agentSoftphone(tenant, r.WorkNo)
		if !found {
			return nil, fail(schemas.CodeNotFound, "agent softphone not known")
		}
		if r.RequireVisible && !resp.Visible {
			return nil, fail(schemas.CodeNotVisible, "agent softphone not visible")
		}
		return resp, nil
	}, nil
}

func parsePhoneState(s *Service, tenant string, data []byte) (runFunc, error) {
	r, err := decodePhoneState(data)
	if err != nil {
		return nil, err
	}
	if err := checkToken("phone_num", r.PhoneNum); err != nil {
		return nil, err
	}
	if r.AsOf != "" {
		return s.pastPhoneState(tenant, r)
	}
	wait, err := parseWait(r.Wait)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, inline bool) (any, error) {
		if err := s.awaitSeq(ctx, r.MinSeq, wait, inline); err != nil {
			return nil, err
		}
		resp, found := s.view.phoneState(tenant, r.PhoneNum)
		if !found {
			return nil, fail(schemas.CodeNotFound, "phone not known")
		}
		if r.RequireVisible && !resp.Visible {
			return nil, fail(schemas.CodeNotVisible, "phone not visible")
		}
		return resp, nil
	}, nil
}

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

func parseAgentsList(s *Service, tenant string, data []byte) (runFunc, error) {
	var r schemas.AgentsListRequest
	if err := decodeStrict(data, &r); err != nil {
		return nil, err
	}
	if err := checkPage(&r.ListRequest); err != nil {
		return nil, err
	}
	after := 0
	if r.Cursor != "" {
		n, err := strconv.Atoi(r.Cursor)
		if err != nil || schemas.ValidWorkNo(n) != nil {
			return nil, badRequest("invalid cursor")
		}
		after = n
	}
	if r.AsOf != "" {
		return s.pastAgentsList(tenant, r, after)
	}
	wait, err := parseWait(r.Wait)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, inline bool) (any, error) {
		if err := s.awaitSeq(ctx, r.MinSeq, wait, inline); err != nil {
			return nil, err
		}
		return s.view.listAgents(tenant, after, r.Offset, r.Limit, r.InCall, r.Visible), nil
	}, nil
}

func parsePhonesList(s *Service, tenant string, data []byte) (runFunc, error) {
	var r schemas.PhonesListRequest
	if err := decodeStrict(data, &r); err != nil {
		return nil, err
	}
	if err := checkPage(&r.ListRequest); err != nil {
		return nil, err
	}
	if r.Cursor != "" {
		if err := checkToken("cursor", r.Cursor); err != nil {
			return nil, err
		}
	}
	if r.AsOf != "" {
		return s.pastPhonesList(tenant, r)
	}
	wait, err := parseWait(r.Wait)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, inline bool) (any, error) {
		if err := s.awaitSeq(ctx, r.MinSeq, wait, inline); err != nil {
			return nil, err
		}
		return s.view.listPhones(tenant, r.Cursor, r.Offset, r.Limit, r.Registered, r.Visible), nil
	}, nil
}
