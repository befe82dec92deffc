package subscriber

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/cecbridge/cecbridge/schemas"
)

// endpoint is one lookup endpoint: its subject under the tenant's group,
// its description, and how its requests are parsed.
type endpoint struct {
	subject string
	desc    string
	parse   func(s *Service, tenant string, data []byte) (runFunc, error)
}

var endpoints = []endpoint{
	{schemas.LookupAgentCalls, "call IDs an agent holds, by work_no", parseView[agentCallsQuery]},
	{schemas.LookupAgentSoftphone, "an agent's SIP account, SIP server and phone registration state", parseView[agentSoftphoneQuery]},
	{schemas.LookupAgentState, "an agent's CTI state and since when (CMS sweep only)", parseView[agentStateQuery]},
	{schemas.LookupAgentByAccount, "work_no, agent type and status for a sign-in account (vendor, cached)", parseAgentByAccount},
	{schemas.LookupPhoneState, "a softphone number's registration state", parseView[phoneStateQuery]},
	{schemas.LookupAgentsList, "agents in work_no order, paginated, filters in_call and visible", parseView[agentsListQuery]},
	{schemas.LookupPhonesList, "phones in number order, paginated, filters registered and visible", parseView[phonesListQuery]},
}

// A viewQuery is a request answered from the state view, or, with as_of,
// from the events history. Every one is parsed the same way (parseView);
// they differ in their own fields and in what they read.
type viewQuery interface {
	// decode takes the request body into the embedded schemas request:
	// point lookups through the fast scanner (decode.go), lists through
	// decodeStrict. Decoding into the embedded request rather than the
	// embedding struct saves encoding/json an allocation.
	decode(data []byte) error
	// check validates the request's own fields: key, paging, cursor.
	check() error
	// options returns the read options every view request carries.
	options() readOptions
	// past answers the request as of a past instant (see asof.go).
	past(s *Service, tenant string, at time.Time) runFunc
	// read answers from the live view, once it has applied min_seq.
	read(ctx context.Context, s *Service, tenant string, r liveRead) (any, error)
}

// parseView decodes and checks a view-backed request of type Q and returns
// its answer: as of a past instant, or from the live view once it has
// applied min_seq (waiting at most wait, never inline).
func parseView[Q any, P interface {
	*Q
	viewQuery
}](s *Service, tenant string, data []byte) (runFunc, error) {
	q := P(new(Q))
	if err := q.decode(data); err != nil {
		return nil, err
	}
	if err := q.check(); err != nil {
		return nil, err
	}
	o := q.options()
	if o.asOf != "" {
		at, err := parseAsOf(o.asOf, o.minSeq != 0 || o.wait != "" || o.maxAge != "")
		if err != nil {
			return nil, err
		}
		return q.past(s, tenant, at), nil
	}
	wait, err := parseWait(o.wait)
	if err != nil {
		return nil, err
	}
	maxAge, err := parseMaxAge(o.maxAge)
	if err != nil {
		return nil, err
	}
	minSeq := o.minSeq
	return func(ctx context.Context, inline bool) (any, error) {
		if err := s.awaitSeq(ctx, minSeq, wait, inline); err != nil {
			return nil, err
		}
		return q.read(ctx, s, tenant, liveRead{maxAge: maxAge, inline: inline})
	}, nil
}

// readOptions say when and from what a view request is read.
type readOptions struct {
	minSeq uint64
	wait   string
	maxAge string // agent.calls only
	asOf   string
}

// liveRead says how a request reads the live view: an observation older
// than maxAge (when it is not negative, agent.calls only) is fetched from
// the vendor, which an inline read cannot do (see runFunc).
type liveRead struct {
	maxAge time.Duration
	inline bool
}

// checkEntity turns an answer about one entity into 404 when it is not
// known, or 409 when it must be visible and is not. when qualifies the
// description ("" now, " at as_of" for the past).
func checkEntity(found, visible, requireVisible bool, what, when string) error {
	switch {
	case !found:
		return fail(schemas.CodeNotFound, what+" not known"+when)
	case requireVisible && !visible:
		return fail(schemas.CodeNotVisible, what+" not visible"+when)
	}
	return nil
}

// answerEntity answers resp, the view's answer about one entity now, or
// the error checkEntity makes of it.
func answerEntity(resp any, found, visible, requireVisible bool, what string) (any, error) {
	if err := checkEntity(found, visible, requireVisible, what, ""); err != nil {
		return nil, err
	}
	return resp, nil
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
