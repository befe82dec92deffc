package subscriber

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
)

// newHistoryEnv is newEnv with the streams laid out as the publisher does
// (direct gets allowed), the events stream keeping at most maxMsgs.
func newHistoryEnv(t *testing.T, maxMsgs int64) *env {
	t.Helper()
	return newHistoryEnvTB(t, maxMsgs)
}

func newHistoryEnvTB(t testing.TB, maxMsgs int64) *env {
	t.Helper()
	e := &env{srv: natstest.RunServer(t)}
	e.nc = e.srv.Connect(t)
	var err error
	if e.js, err = jetstream.New(e.nc); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: DefaultEventsStream, Subjects: []string{schemas.AllEvents},
		Storage: jetstream.MemoryStorage, MaxMsgs: maxMsgs, Discard: jetstream.DiscardOld, AllowDirect: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: DefaultStateStream, MaxMsgsPerSubject: 1, AllowDirect: true,
		Storage: jetstream.MemoryStorage, Sources: []*jetstream.StreamSource{{Name: DefaultEventsStream}}}); err != nil {
		t.Fatal(err)
	}
	e.br = newBridge(t, e.js, "dev")
	e.view, e.svc = startInstance(t, e.srv, nil, Config{Tenants: []string{"dev"}})
	return e
}

// instant returns a time after everything stored so far and before
// anything stored later.
func instant() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func askCode(t *testing.T, e *env, endpoint string, req any) string {
	t.Helper()
	_, code := ask(t, e.nc, "dev", endpoint, req)
	return code
}

// Answers as of a past instant show each entity, the phone an agent was
// bound to, the lists and visibility as they stood then.
func TestAsOfRebuildsThePast(t *testing.T) {
	e := newHistoryEnv(t, -1)
	before := instant()
	now := time.Now()
	sp1 := &schemas.AgentSoftphone{SIPAccount: "88881001", SIPServerIP: "10.0.0.1", SIPServerPort: 5060}
	sp2 := &schemas.AgentSoftphone{SIPAccount: "88871001", SIPServerIP: "10.0.0.2", SIPServerPort: 5060}
	e.br.calls(1001, []string{}, now)
	e.br.softphone(1001, sp1, now)
	e.br.phone("88881001", 0, now)
	e.br.phone("88871001", 0, now)
	t1 := instant()
	callsSeq := e.br.calls(1001, []string{"c1"}, now.Add(time.Second))
	e.br.softphone(1001, sp2, now.Add(time.Second))
	e.br.phone("88871001", 1, now.Add(time.Second))
	t2 := instant()
	e.br.calls(1002, []string{"x"}, now.Add(2*time.Second))
	e.br.visibility(schemas.VisibilityLost, schemas.ScopeCalls, "1001")
	t3 := instant()
	last := e.br.calls(1001, []string{}, now.Add(3*time.Second))
	e.settle(t, last)

	var calls schemas.AgentCallsResponse
	askOK(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{AsOf: t1}}, &calls)
	if len(calls.CallIDs) != 0 || calls.Seq != 1 || !calls.Visible || calls.AsOf == nil || calls.AsOf.From != schemas.AsOfEvent ||
		calls.AsOf.EventID != schemas.EventID(schemas.AgentCallsSubject("dev", 1001), 1) || calls.AsOf.EventStreamSeq != 1 || calls.StreamSeq != 4 {
		t.Fatalf("calls at t1: %+v %+v", calls, calls.AsOf)
	}
	askOK(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{AsOf: t2}}, &calls)
	if !slices.Equal(calls.CallIDs, []string{"c1"}) || calls.Seq != 2 || calls.AsOf.EventStreamSeq != callsSeq || calls.Live {
		t.Fatalf("calls at t2: %+v %+v", calls, calls.AsOf)
	}
	askOK(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{AsOf: t3}}, &calls)
	if calls.Visible || !slices.Equal(calls.CallIDs, []string{"c1"}) {
		t.Fatalf("calls at t3, after visibility was lost: %+v", calls)
	}
	if code := askCode(t, e, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{AsOf: t3, RequireVisible: true}}); code != "409" {
		t.Fatalf("require_visible at t3: %q", code)
	}
	if code := askCode(t, e, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1002, ReadOptions: schemas.ReadOptions{AsOf: t1}}); code != "404" {
		t.Fatalf("an agent that came later: %q", code)
	}

	var sp schemas.AgentSoftphoneResponse
	askOK(t, e.nc, schemas.LookupAgentSoftphone, schemas.AgentSoftphoneRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{AsOf: t1}}, &sp)
	if sp.SIPAccount != "88881001" || !sp.Registered || sp.PhoneStatus != schemas.PhoneRegistered {
		t.Fatalf("softphone at t1: %+v", sp)
	}
	askOK(t, e.nc, schemas.LookupAgentSoftphone, schemas.AgentSoftphoneRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{AsOf: t2}}, &sp)
	if sp.SIPAccount != "88871001" || sp.Registered || sp.PhoneStatus != schemas.PhoneSuspended || sp.Seq != 2 {
		t.Fatalf("softphone at t2: %+v", sp)
	}
	var ph schemas.PhoneStateResponse
	askOK(t, e.nc, schemas.LookupPhoneState, schemas.PhoneStateRequest{PhoneNum: "88871001", ReadOptions: schemas.ReadOptions{AsOf: t1}}, &ph)
	if ph.StatusCode != 0 || ph.Seq != 1 {
		t.Fatalf("phone at t1: %+v", ph)
	}

	var agents schemas.AgentsListResponse
	yes := true
	askOK(t, e.nc, schemas.LookupAgentsList, schemas.AgentsListRequest{InCall: &yes, AsOf: t2}, &agents)
	if len(agents.Agents) != 1 || agents.Agents[0].WorkNo != 1001 || agents.AsOf == nil || agents.StreamSeq != callsSeq+2 {
		t.Fatalf("in call at t2: %+v", agents)
	}
	askOK(t, e.nc, schemas.LookupAgentsList, schemas.AgentsListRequest{AsOf: t1}, &agents)
	if len(agents.Agents) != 1 || agents.Agents[0].InCall {
		t.Fatalf("agents at t1: %+v", agents)
	}
	askOK(t, e.nc, schemas.LookupAgentsList, schemas.AgentsListRequest{AsOf: t3, ListRequest: schemas.ListRequest{Limit: 1}}, &agents)
	if len(agents.Agents) != 1 || agents.NextCursor != "1001" {
		t.Fatalf("first page at t3: %+v", agents)
	}
	askOK(t, e.nc, schemas.LookupAgentsList, schemas.AgentsListRequest{AsOf: t3, ListRequest: schemas.ListRequest{Limit: 1, Cursor: "1001"}}, &agents)
	if len(agents.Agents) != 1 || agents.Agents[0].WorkNo != 1002 || agents.NextCursor != "" {
		t.Fatalf("second page at t3: %+v", agents)
	}
	var phones schemas.PhonesListResponse
	no := false
	askOK(t, e.nc, schemas.LookupPhonesList, schemas.PhonesListRequest{Registered: &no, AsOf: t2}, &phones)
	if len(phones.Phones) != 1 || phones.Phones[0].PhoneNum != "88871001" {
		t.Fatalf("unregistered at t2: %+v", phones)
	}
	askOK(t, e.nc, schemas.LookupPhonesList, schemas.PhonesListRequest{Registered: &no, AsOf: t1}, &phones)
	if len(phones.Phones) != 0 {
		t.Fatalf("unregistered at t1: %+v", phones)
	}

	for name, c := range map[string]struct {
		endpoint string
		req      any
		code     string
	}{
		"before the first event": {schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{AsOf: before}}, "409"},
		"list before the first":  {schemas.LookupAgentsList, schemas.AgentsListRequest{AsOf: before}, "409"},
		"in the future":          {schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{AsOf: "2999-01-01T00:00:00Z"}}, "400"},
		"not a time":             {schemas.LookupPhoneState, schemas.PhoneStateRequest{PhoneNum: "1", ReadOptions: schemas.ReadOptions{AsOf: "yesterday"}}, "400"},
		"with min_seq":           {schemas.LookupAgentSoftphone, schemas.AgentSoftphoneRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{AsOf: t1, MinSeq: 3}}, "400"},
		"with max_age":           {schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1001, MaxAge: "1s", ReadOptions: schemas.ReadOptions{AsOf: t1}}, "400"},
		"list with wait":         {schemas.LookupPhonesList, schemas.PhonesListRequest{AsOf: t1, Wait: "1s"}, "400"},
	} {
		if code := askCode(t, e, c.endpoint, c.req); code != c.code {
			t.Errorf("%s: code %q, want %s", name, code, c.code)
		}
	}
}

// An entity whose events of that time have aged out is rebuilt from the
// before of its next event, or from CEC_STATE when it has not changed since.
func TestAsOfAcrossTheRetention(t *testing.T) {
	e := newHistoryEnv(t, 6)
	// Sourcing is asynchronous: a message that ages out of CEC_EVENTS
	// before CEC_STATE copied it is not copied.
	sourced := func(n uint64) {
		testwait.Until(t, "CEC_STATE sourced", func() bool {
			s, err := e.js.Stream(context.Background(), DefaultStateStream)
			return err == nil && s.CachedInfo().State.Msgs == n
		})
	}
	now := time.Now()
	e.br.calls(2001, []string{"q"}, now) // never changes again
	cut := instant()
	sourced(1)
	e.br.calls(2002, []string{"a"}, now)
	sourced(2)
	for i := range 4 {
		e.br.calls(2003, []string{string(rune('a' + i))}, now.Add(time.Duration(i)*time.Second))
	}
	at := instant()
	e.br.calls(2002, []string{"b"}, now.Add(5*time.Second))
	e.br.calls(2004, []string{"new"}, now.Add(5*time.Second))
	last := e.br.calls(2004, []string{}, now.Add(6*time.Second))
	e.settle(t, last)
	sourced(4)

	var calls schemas.AgentCallsResponse
	askOK(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 2001, ReadOptions: schemas.ReadOptions{AsOf: at}}, &calls)
	if !slices.Equal(calls.CallIDs, []string{"q"}) || calls.AsOf.From != schemas.AsOfState || calls.AsOf.EventStreamSeq != 0 ||
		calls.AsOf.EventID != schemas.EventID(schemas.AgentCallsSubject("dev", 2001), 1) {
		t.Fatalf("quiet agent: %+v %+v", calls, calls.AsOf)
	}
	askOK(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 2002, ReadOptions: schemas.ReadOptions{AsOf: at}}, &calls)
	if !slices.Equal(calls.CallIDs, []string{"a"}) || calls.Seq != 1 || calls.AsOf.From != schemas.AsOfNextBefore ||
		calls.AsOf.EventID != schemas.EventID(schemas.AgentCallsSubject("dev", 2002), 1) || calls.Observed == nil {
		t.Fatalf("agent whose event aged out: %+v %+v", calls, calls.AsOf)
	}
	askOK(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 2003, ReadOptions: schemas.ReadOptions{AsOf: at}}, &calls)
	if !slices.Equal(calls.CallIDs, []string{"d"}) || calls.AsOf.From != schemas.AsOfEvent {
		t.Fatalf("agent with retained events: %+v %+v", calls, calls.AsOf)
	}
	if code := askCode(t, e, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 2004, ReadOptions: schemas.ReadOptions{AsOf: at}}); code != "404" {
		t.Fatalf("agent that came later: %q", code)
	}
	var agents schemas.AgentsListResponse
	askOK(t, e.nc, schemas.LookupAgentsList, schemas.AgentsListRequest{AsOf: at}, &agents)
	var got []int
	for _, a := range agents.Agents {
		got = append(got, a.WorkNo)
	}
	if !slices.Equal(got, []int{2001, 2002, 2003}) || agents.AsOf.RetainedFrom.IsZero() {
		t.Fatalf("agents at the instant: %+v", agents)
	}
	if code := askCode(t, e, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 2001, ReadOptions: schemas.ReadOptions{AsOf: cut}}); code != "409" {
		t.Fatalf("before the retention: %q", code)
	}
}

// Streams that do not allow direct gets cannot answer for the past: 503,
// and the service goes on answering for now.
func TestAsOfWithoutDirectGetIsUnavailable(t *testing.T) {
	e := newEnv(t, nil, Config{})
	seq := e.br.calls(1001, []string{"c1"}, time.Now())
	e.settle(t, seq)
	if code := askCode(t, e, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{AsOf: instant()}}); code != "503" {
		t.Fatalf("as_of without direct get: %q", code)
	}
	var calls schemas.AgentCallsResponse
	askOK(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1001}, &calls)
	if !slices.Equal(calls.CallIDs, []string{"c1"}) {
		t.Fatalf("lookup for now: %+v", calls)
	}
}
