package subscriber

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

func talking(since time.Time) *schemas.AgentState {
	signedIn := since.Add(-time.Hour)
	return &schemas.AgentState{State: "talking", StateCode: 5, Since: since, PrevState: "answering", SignedInAt: &signedIn}
}

func idle(since time.Time) *schemas.AgentState {
	return &schemas.AgentState{State: "idle", StateCode: 1, Since: since}
}

// askError sends one lookup that must fail and returns its code and
// description.
func askError(t *testing.T, nc *nats.Conn, endpoint string, req any) (code, desc string) {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := nc.Request(schemas.LookupSubject("dev", endpoint), body, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Data) != 0 {
		t.Fatalf("%s %s: answered %s, want an error", endpoint, body, msg.Data)
	}
	return msg.Header.Get(micro.ErrorCodeHeader), msg.Header.Get(micro.ErrorHeader)
}

// agent.state answers the after of the agent's last state event, with its
// seq and observation; an agent without one is 404 with a description
// that says agent state needs a CMS sweep; a deleted state is 404 too;
// visible and require_visible follow bridge.states_visibility, not the
// calls' visibility.
func TestAgentStateAnswersTheLastStateEvent(t *testing.T) {
	e := newEnv(t, nil, Config{})
	t0 := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	t1 := t0.Add(20 * time.Second)
	e.br.calls(1001, []string{}, t0)
	e.br.calls(1002, []string{}, t0)
	e.br.state(1001, idle(t0.Add(-5*time.Minute)), t0)
	e.settle(t, e.br.state(1001, talking(t1.Add(-2*time.Second)), t1))

	var st schemas.AgentStateResponse
	askOK(t, e.nc, schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: 1001}, &st)
	want := talking(t1.Add(-2 * time.Second))
	if st.Tenant != "dev" || st.WorkNo != 1001 || st.State != "talking" || st.StateCode != 5 || !st.Since.Equal(want.Since) ||
		st.PrevState != "answering" || st.SignedInAt == nil || !st.SignedInAt.Equal(*want.SignedInAt) || st.Seq != 2 ||
		st.Observed == nil || !st.Observed.Equal(t1) || !st.Visible || st.Live || st.AsOf != nil || st.StreamSeq != e.view.Applied() {
		t.Fatalf("agent.state 1001 = %+v", st)
	}

	// The fast encoder writes what encoding/json would.
	body, _ := ask(t, e.nc, "dev", schemas.LookupAgentState, `{"work_no":1001}`)
	want2, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != string(want2) {
		t.Fatalf("answer %s, json.Marshal of it %s", body, want2)
	}

	for _, n := range []int{1002, 4242} { // calls but no state; nothing at all
		code, desc := askError(t, e.nc, schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: n})
		if code != "404" || !strings.Contains(desc, "CMS sweep") {
			t.Fatalf("agent %d without a state event: %s %q", n, code, desc)
		}
	}

	// The state has its own visibility (bridge.states_visibility): the
	// calls' does not move it, and a state not observed is not visible
	// while the calls are.
	e.settle(t, e.br.visibility(schemas.VisibilityLost, schemas.ScopeCalls, "1001"))
	askOK(t, e.nc, schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{RequireVisible: true}}, &st)
	if !st.Visible {
		t.Fatalf("agent.state with only the calls not visible = %+v", st)
	}
	e.br.visibility(schemas.VisibilityRestored, schemas.ScopeCalls, "1001")
	e.settle(t, e.br.statesVisibility("1001,1005"))
	askOK(t, e.nc, schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: 1001}, &st)
	if st.Visible || st.State != "talking" {
		t.Fatalf("agent.state with the state not visible = %+v", st)
	}
	if code, desc := askError(t, e.nc, schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: 1001,
		ReadOptions: schemas.ReadOptions{RequireVisible: true}}); code != "409" || desc != "agent state not visible" {
		t.Fatalf("require_visible while not visible: %s %q", code, desc)
	}
	var calls schemas.AgentCallsResponse
	askOK(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{RequireVisible: true}}, &calls)
	if !calls.Visible {
		t.Fatalf("agent.calls with only the state not visible = %+v", calls)
	}
	// Each picture replaces the last whole: 1001 left it.
	e.settle(t, e.br.statesVisibility("1005"))
	askOK(t, e.nc, schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{RequireVisible: true}}, &st)
	if !st.Visible {
		t.Fatalf("agent.state after a picture without it = %+v", st)
	}
	e.settle(t, e.br.statesVisibility(""))

	// The agent left the roster: its state is deleted.
	e.settle(t, e.br.state(1001, nil, t1.Add(time.Second)))
	if code, _ := askError(t, e.nc, schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: 1001}); code != "404" {
		t.Fatalf("deleted state: %s", code)
	}
}

// A request with min_seq sent before the event it names is answered with
// that event's state: read your own writes.
func TestAgentStateMinSeqWaitsForTheEvent(t *testing.T) {
	e := newEnv(t, nil, Config{})
	now := time.Now().UTC().Truncate(time.Second)
	first := e.br.state(1001, idle(now.Add(-time.Minute)), now)
	e.settle(t, first)

	inbox := nats.NewInbox()
	sub, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	req := fmt.Sprintf(`{"work_no":1001,"min_seq":%d,"wait":"5s"}`, first+1)
	if err := e.nc.PublishRequest(schemas.LookupSubject("dev", schemas.LookupAgentState), inbox, []byte(req)); err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	next := e.br.state(1001, talking(now), now.Add(time.Second))
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Fatalf("min_seq %d: error %s %s", next, code, msg.Header.Get(micro.ErrorHeader))
	}
	schematest.ValidateJSON(t, schemas.LookupSchemaFile(schemas.LookupAgentState, "response"), msg.Data)
	var st schemas.AgentStateResponse
	if err := json.Unmarshal(msg.Data, &st); err != nil {
		t.Fatal(err)
	}
	if st.State != "talking" || st.Seq != 2 || st.StreamSeq < next {
		t.Fatalf("answer to min_seq %d = %+v", next, st)
	}
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentState, map[string]any{"work_no": 1001, "min_seq": next + 100, "wait": "50ms"}); code != "504" {
		t.Fatalf("min_seq never reached: %q", code)
	}
}

// Malformed agent.state requests get 400 with a description that names
// the problem, and the service goes on answering.
func TestAgentStateRefusesBadRequests(t *testing.T) {
	e := newEnv(t, nil, Config{})
	e.settle(t, e.br.state(1001, idle(time.Now().UTC().Truncate(time.Second)), time.Now()))
	for body, want := range map[string]string{
		``:                                  "work_no missing",
		`{"work_no":"1001"}`:                "malformed JSON",
		`{"work_no":1001,"state":"idle"}`:   "unknown field",
		`{"work_no":1001}{}`:                "trailing data",
		`{"work_no":100}`:                   "outside 101-999999",
		`{"work_no":1001,"wait":"forever"}`: "wait must be a duration",
		`{"work_no":1001,"max_age":"1s"}`:   "unknown field",
		`{"work_no":1001,"as_of":"noon"}`:   "as_of must be an RFC 3339 instant",
		`{"work_no":1001,"as_of":"2020-01-01T00:00:00Z","min_seq":1}`: "as_of excludes min_seq",
	} {
		msg, err := e.nc.Request(schemas.LookupSubject("dev", schemas.LookupAgentState), []byte(body), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code, desc := msg.Header.Get(micro.ErrorCodeHeader), msg.Header.Get(micro.ErrorHeader); code != "400" || !strings.Contains(desc, want) {
			t.Errorf("%s: %s %q, want 400 saying %q", body, code, desc, want)
		}
	}
	var st schemas.AgentStateResponse
	askOK(t, e.nc, schemas.LookupAgentState, map[string]any{"work_no": 1001}, &st)
}

// The view skips agent.calls.v2 events without decoding them (and without
// counting them as unusable), and agent.calls answers keep the v1 shape.
func TestCallsV2EventsLeaveTheViewAlone(t *testing.T) {
	e := newEnv(t, nil, Config{})
	now := time.Now().UTC().Truncate(time.Millisecond)
	e.settle(t, e.br.calls(1001, []string{"c1"}, now))
	before, _ := ask(t, e.nc, "dev", schemas.LookupAgentCalls, `{"work_no":1001}`)

	subj := schemas.AgentCallsV2Subject("dev", 1001)
	v2 := &schemas.AgentCallsV2{CallIDs: []string{"c1", "c2"}, Calls: []schemas.Call{
		{ID: "c1", Status: "talking", Direction: schemas.DirectionInbound},
		{ID: "c2", Status: "alerting", Direction: schemas.DirectionInbound}}}
	last := e.br.publish(subj, schemas.TypeAgentCallsV2, change(e.br, subj, schemas.Key{Tenant: "dev", WorkNo: 1001}, v2, now))
	e.settle(t, last)
	if n := e.view.Skipped(); n != 0 {
		t.Fatalf("skipped %d events", n)
	}
	after, _ := ask(t, e.nc, "dev", schemas.LookupAgentCalls, `{"work_no":1001}`)
	var b, a map[string]any
	if json.Unmarshal(before, &b) != nil || json.Unmarshal(after, &a) != nil {
		t.Fatalf("answers %s, %s", before, after)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b))) || fmt.Sprint(a["call_ids"]) != "[c1]" ||
		a["seq"] != b["seq"] || a["stream_seq"].(float64) != float64(last) {
		t.Fatalf("agent.calls before the v2 event %s, after %s", before, after)
	}
	if code, _ := askError(t, e.nc, schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: 1001}); code != "404" {
		t.Fatalf("a calls_v2 event made an agent state: %s", code)
	}
	// Not decoded at all: a body that is not even JSON only moves the
	// applied sequence.
	e.view.apply(last+1, subj, []byte("not json"))
	if e.view.Skipped() != 0 || e.view.Applied() != last+1 {
		t.Fatalf("a calls_v2 body was decoded: skipped %d, applied %d", e.view.Skipped(), e.view.Applied())
	}
}

// As of a past instant, agent.state answers the state of then, names its
// event, is visible as the states picture of then says (the calls'
// visibility aside), and is 404 (saying why) before the agent's first
// state event.
func TestAgentStateAsOf(t *testing.T) {
	e := newHistoryEnv(t, -1)
	now := time.Now().UTC().Truncate(time.Second)
	e.br.calls(1001, []string{}, now)
	t0 := instant()
	first := e.br.state(1001, idle(now.Add(-time.Minute)), now)
	t1 := instant()
	e.br.state(1001, talking(now), now.Add(time.Second))
	e.br.visibility(schemas.VisibilityLost, schemas.ScopeCalls, "1001")
	t1b := instant()
	e.br.statesVisibility("1001")
	t2 := instant()
	e.br.state(1001, idle(now.Add(2*time.Second)), now.Add(2*time.Second))
	e.br.statesVisibility("1002")
	t3 := instant()
	e.settle(t, e.br.visibility(schemas.VisibilityRestored, schemas.ScopeCalls, "1001"))

	stateAt := func(at string, requireVisible bool) schemas.AgentStateResponse {
		t.Helper()
		var st schemas.AgentStateResponse
		askOK(t, e.nc, schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: 1001,
			ReadOptions: schemas.ReadOptions{AsOf: at, RequireVisible: requireVisible}}, &st)
		return st
	}
	st := stateAt(t1, true)
	if st.State != "idle" || st.Seq != 1 || !st.Visible || st.AsOf == nil || st.AsOf.From != schemas.AsOfEvent ||
		st.AsOf.EventID != schemas.EventID(schemas.AgentStateSubject("dev", 1001), 1) || st.AsOf.EventStreamSeq != first || st.StreamSeq != first {
		t.Fatalf("state at t1: %+v %+v", st, st.AsOf)
	}
	if st = stateAt(t1b, true); st.State != "talking" || !st.Visible {
		t.Fatalf("state at t1b, only the calls not visible: %+v", st)
	}
	st = stateAt(t2, false)
	if st.State != "talking" || st.Seq != 2 || st.Visible || !st.Since.Equal(now) {
		t.Fatalf("state at t2, state not visible: %+v", st)
	}
	if code, desc := askError(t, e.nc, schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: 1001,
		ReadOptions: schemas.ReadOptions{AsOf: t2, RequireVisible: true}}); code != "409" || !strings.Contains(desc, "at as_of") {
		t.Fatalf("require_visible at t2: %s %q", code, desc)
	}
	if st = stateAt(t3, true); st.State != "idle" || !st.Visible {
		t.Fatalf("state at t3, a later picture without 1001: %+v", st)
	}
	if code, desc := askError(t, e.nc, schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: 1001,
		ReadOptions: schemas.ReadOptions{AsOf: t0}}); code != "404" || !strings.Contains(desc, "at as_of") || !strings.Contains(desc, "CMS sweep") {
		t.Fatalf("before the first state event: %s %q", code, desc)
	}
	var now2 schemas.AgentStateResponse
	askOK(t, e.nc, schemas.LookupAgentState, schemas.AgentStateRequest{WorkNo: 1001}, &now2)
	if now2.State != "idle" || now2.Seq != 3 {
		t.Fatalf("state now: %+v", now2)
	}
}
