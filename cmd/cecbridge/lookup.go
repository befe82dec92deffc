package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/schemas"
)

const defaultServer = "nats://127.0.0.1:4222"

const lookupUsage = `usage: cecbridge lookup <what> [arg] [flags]

what:
  agent-calls WORKNO         call IDs an agent holds
  agent-softphone WORKNO     SIP account, server and phone registration
  agent-state WORKNO         CTI state and since when (tenants with a CMS sweep)
  agent-by-account ACCOUNT   work number, type and status (asks the vendor, cached)
  phone-state NUMBER         a softphone number's registration state
  agents                     list agents (--in-call, --visible, --limit, --cursor, --offset)
  phones                     list phones (--registered, --visible, --limit, --cursor, --offset)

--as-of T answers as of a past instant (RFC 3339, or a duration ago).

flags:
`

// LookupError is a coded error answered by the lookup service.
type LookupError struct {
	Code        int
	Description string
}

func (e *LookupError) Error() string {
	return fmt.Sprintf("lookup: error %d (%s): %s", e.Code, codeName(e.Code), e.Description)
}

func codeName(code int) string {
	switch code {
	case schemas.CodeBadRequest:
		return "bad request"
	case schemas.CodeNotFound:
		return "not found"
	case schemas.CodeNotVisible:
		return "not visible"
	case schemas.CodeInternal:
		return "internal error"
	case schemas.CodeUnavailable:
		return "unavailable"
	case schemas.CodeTimeout:
		return "timeout"
	default:
		return "error"
	}
}

// parseInterleaved parses flags that may come before or after positional
// arguments ("agent-calls 1001 --json" as well as "--json agent-calls 1001").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// triBool is an optional boolean flag: unset, true or false.
type triBool struct{ v *bool }

func (t *triBool) String() string {
	if t.v == nil {
		return ""
	}
	return strconv.FormatBool(*t.v)
}
func (t *triBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	t.v = &b
	return nil
}
func (t *triBool) IsBoolFlag() bool { return true }

// runLookup implements "cecbridge lookup".
func runLookup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lookup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, lookupUsage); fs.PrintDefaults() }
	server := fs.String("server", defaultServer, "NATS server URL")
	tenant := fs.String("tenant", "dev", "tenant")
	asJSON := fs.Bool("json", false, "print the raw JSON answer")
	minSeq := fs.Uint64("min-seq", 0, "answer only once the view has applied this events-stream sequence")
	wait := fs.String("wait", "", "how long the service may wait for --min-seq (default 2s, max 10s)")
	maxAge := fs.String("max-age", "", "ask the vendor live if the view's observation is older (agent-calls, agent-by-account)")
	requireVisible := fs.Bool("require-visible", false, "fail with 409 if the bridge cannot currently observe the entity")
	asOf := fs.String("as-of", "", "answer as of this past instant (RFC 3339, or a duration ago such as 15m), rebuilt from the events stream")
	limit := fs.Int("limit", 0, "list page size (default 100, max 1000)")
	cursor := fs.String("cursor", "", "list cursor from a previous page")
	offset := fs.Int("offset", 0, "list items to skip")
	var inCall, visible, registered triBool
	fs.Var(&inCall, "in-call", "agents: only agents with (true) or without (false) calls")
	fs.Var(&visible, "visible", "lists: only entities the bridge can (true) or cannot (false) observe")
	fs.Var(&registered, "registered", "phones: only registered (true) or unregistered (false) phones")
	timeout := fs.Duration("timeout", 15*time.Second, "request timeout")

	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if len(pos) == 0 {
		fs.Usage()
		return errUsage
	}
	what, rest := pos[0], pos[1:]
	needArg := func(name string) (string, error) {
		if len(rest) != 1 {
			fmt.Fprintf(stderr, "cecbridge lookup %s: want exactly one %s\n", what, name)
			return "", errUsage
		}
		return rest[0], nil
	}
	workNo := func() (int, error) {
		a, err := needArg("WORKNO")
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(a)
		if err != nil {
			fmt.Fprintf(stderr, "cecbridge lookup %s: work number %q is not a number\n", what, a)
			return 0, errUsage
		}
		return n, nil
	}
	if *asOf != "" {
		at, err := parseInstant(*asOf, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "cecbridge lookup: --as-of: %v\n", err)
			return errUsage
		}
		*asOf = at.UTC().Format(time.RFC3339Nano)
	}
	read := schemas.ReadOptions{MinSeq: *minSeq, Wait: *wait, RequireVisible: *requireVisible, AsOf: *asOf}
	page := schemas.ListRequest{Limit: *limit, Cursor: *cursor, Offset: *offset}

	var endpoint string
	var req, resp any
	switch what {
	case "agent-calls":
		n, err := workNo()
		if err != nil {
			return err
		}
		endpoint, req, resp = schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: n, MaxAge: *maxAge, ReadOptions: read}, &schemas.AgentCallsResponse{}
	case "agent-softphone":
		n, err := workNo()
		if err != nil {
			return err
		}
		endpoint, req, resp = schemas.LookupAgentSoftphone, schemas.AgentSoftphoneRequest{WorkNo: n, ReadOptions: read}, &schemas.AgentSoftphoneResponse{}
	case "agent-state":
		n, err := workNo()
		if err != nil {
			return err
		}
		endpoint, req, resp = schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: n, ReadOptions: read}, &schemas.AgentStateResponse{}
	case "agent-by-account":
		a, err := needArg("ACCOUNT")
		if err != nil {
			return err
		}
		endpoint, req, resp = schemas.LookupAgentByAccount, schemas.AgentByAccountRequest{Account: a, MaxAge: *maxAge}, &schemas.AgentByAccountResponse{}
	case "phone-state":
		a, err := needArg("NUMBER")
		if err != nil {
			return err
		}
		endpoint, req, resp = schemas.LookupPhoneState, schemas.PhoneStateRequest{PhoneNum: a, ReadOptions: read}, &schemas.PhoneStateResponse{}
	case "agents":
		endpoint, req, resp = schemas.LookupAgentsList, schemas.AgentsListRequest{ListRequest: page, InCall: inCall.v, Visible: visible.v,
			MinSeq: *minSeq, Wait: *wait, AsOf: *asOf}, &schemas.AgentsListResponse{}
	case "phones":
		endpoint, req, resp = schemas.LookupPhonesList, schemas.PhonesListRequest{ListRequest: page, Registered: registered.v, Visible: visible.v,
			MinSeq: *minSeq, Wait: *wait, AsOf: *asOf}, &schemas.PhonesListResponse{}
	default:
		fmt.Fprintf(stderr, "cecbridge lookup: unknown lookup %q\n\n", what)
		fs.Usage()
		return errUsage
	}
	if (what == "agents" || what == "phones") && len(rest) != 0 {
		fmt.Fprintf(stderr, "cecbridge lookup %s: unexpected argument %q\n", what, rest[0])
		return errUsage
	}

	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("lookup: encode request: %w", err)
	}
	nc, err := nats.Connect(*server, nats.Name("cecbridge-lookup"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("lookup: connect to %s: %w", configs.RedactURL(*server), configs.RedactURLError(err, *server))
	}
	defer nc.Close()
	rctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	msg, err := nc.RequestWithContext(rctx, schemas.LookupSubject(*tenant, endpoint), body)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("lookup: no lookup service answers for tenant %q on %s: %w", *tenant, configs.RedactURL(*server), err)
		}
		return fmt.Errorf("lookup: %s: %w", endpoint, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		n, _ := strconv.Atoi(code)
		lerr := &LookupError{Code: n, Description: msg.Header.Get(micro.ErrorHeader)}
		if *asJSON {
			b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": n, "description": lerr.Description}})
			fmt.Fprintln(stdout, string(b))
		}
		return lerr
	}
	if *asJSON {
		_, err := fmt.Fprintln(stdout, string(msg.Data))
		return err
	}
	if err := json.Unmarshal(msg.Data, resp); err != nil {
		return fmt.Errorf("lookup: decode answer: %w", err)
	}
	printAnswer(stdout, resp)
	return nil
}

func printAnswer(w io.Writer, resp any) {
	switch r := resp.(type) {
	case *schemas.AgentCallsResponse:
		fmt.Fprintf(w, "agent %d (%s): %s\n", r.WorkNo, r.Tenant, callList(r.CallIDs))
		printMeta(w, r.Meta)
	case *schemas.AgentSoftphoneResponse:
		fmt.Fprintf(w, "agent %d (%s): sip account %s", r.WorkNo, r.Tenant, orDash(r.SIPAccount))
		if r.SIPServerIP != "" {
			fmt.Fprintf(w, " at %s:%d", r.SIPServerIP, r.SIPServerPort)
		}
		if r.AccountCode != "" {
			fmt.Fprintf(w, ", business account %s", r.AccountCode)
		}
		fmt.Fprintln(w)
		if r.PhoneStatus != "" {
			fmt.Fprintf(w, "  phone: %s (status code %d)\n", r.PhoneStatus, *r.PhoneStatusCode)
		} else {
			fmt.Fprintln(w, "  phone: not known")
		}
		printMeta(w, r.Meta)
	case *schemas.AgentStateResponse:
		at := time.Now() // the time in state runs to the answer's instant
		if r.AsOf != nil {
			at = r.AsOf.At
		}
		fmt.Fprintf(w, "agent %d (%s): %s (state code %d) since %s, for %s", r.WorkNo, r.Tenant, r.State, r.StateCode,
			r.Since.UTC().Format(time.RFC3339), max(at.Sub(r.Since), 0).Round(time.Second))
		if r.PrevState != "" {
			fmt.Fprintf(w, ", before: %s", r.PrevState)
		}
		fmt.Fprintln(w)
		printMeta(w, r.Meta)
	case *schemas.AgentByAccountResponse:
		fmt.Fprintf(w, "account %s (%s): agent %d, type %d, status %s\n", r.Account, r.Tenant, r.WorkNo, r.AgentType, r.AgentStatus)
		src := "cached"
		if r.Live {
			src = "live"
		}
		fmt.Fprintf(w, "  %s, asked %s\n", src, ago(&r.Observed))
	case *schemas.PhoneStateResponse:
		fmt.Fprintf(w, "phone %s (%s): %s (status code %d)\n", r.PhoneNum, r.Tenant, r.Status, r.StatusCode)
		printMeta(w, r.Meta)
	case *schemas.AgentsListResponse:
		fmt.Fprintf(w, "%-8s %-8s %-8s %-12s %s\n", "WORKNO", "VISIBLE", "IN CALL", "SIP", "CALLS")
		for _, a := range r.Agents {
			fmt.Fprintf(w, "%-8d %-8t %-8t %-12s %s\n", a.WorkNo, a.Visible, a.InCall, orDash(a.SIPAccount), strings.Join(a.CallIDs, ","))
		}
		fmt.Fprintf(w, "%d agents, stream_seq %d", len(r.Agents), r.StreamSeq)
		if r.NextCursor != "" {
			fmt.Fprintf(w, ", more: --cursor %s", r.NextCursor)
		}
		fmt.Fprintln(w)
		printAsOf(w, r.AsOf)
	case *schemas.PhonesListResponse:
		fmt.Fprintf(w, "%-16s %-8s %-12s %s\n", "PHONE", "VISIBLE", "STATUS", "CODE")
		for _, p := range r.Phones {
			fmt.Fprintf(w, "%-16s %-8t %-12s %d\n", p.PhoneNum, p.Visible, p.Status, p.StatusCode)
		}
		fmt.Fprintf(w, "%d phones, stream_seq %d", len(r.Phones), r.StreamSeq)
		if r.NextCursor != "" {
			fmt.Fprintf(w, ", more: --cursor %s", r.NextCursor)
		}
		fmt.Fprintln(w)
		printAsOf(w, r.AsOf)
	}
}

func printMeta(w io.Writer, m schemas.Meta) {
	vis := "visible"
	if !m.Visible {
		vis = "NOT VISIBLE (last known state)"
	}
	src := ""
	if m.Live {
		src = ", live from the vendor"
	}
	fmt.Fprintf(w, "  seq %d, stream_seq %d, observed %s, %s%s\n", m.Seq, m.StreamSeq, ago(m.Observed), vis, src)
	printAsOf(w, m.AsOf)
}

// printAsOf says which instant a past answer describes and where it came from.
func printAsOf(w io.Writer, a *schemas.AsOf) {
	if a == nil {
		return
	}
	fmt.Fprintf(w, "  as of %s (retention from %s)", a.At.Format(time.RFC3339Nano), a.RetainedFrom.Format(time.RFC3339))
	if a.EventID != "" {
		fmt.Fprintf(w, ", from %s %s", a.From, a.EventID)
		if a.EventStreamSeq != 0 {
			fmt.Fprintf(w, " at stream seq %d", a.EventStreamSeq)
		}
	}
	fmt.Fprintln(w)
}

func callList(ids []string) string {
	switch len(ids) {
	case 0:
		return "no calls"
	case 1:
		return "1 call: " + ids[0]
	default:
		return fmt.Sprintf("%d calls: %s", len(ids), strings.Join(ids, ", "))
	}
}

func ago(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339Nano), time.Since(*t).Round(time.Millisecond))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
