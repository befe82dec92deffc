package subscriber

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// fakeVendor is a LiveFetcher with scripted answers. It counts calls, and
// when gate is set every AgentCalls waits for it.
type fakeVendor struct {
	calls    atomic.Int64
	accounts atomic.Int64
	gate     chan struct{}
	ids      []string
	acc      Account
	accErr   error
	panics   bool
}

func (f *fakeVendor) AgentCalls(ctx context.Context, tenant string, workNo int) ([]string, error) {
	f.calls.Add(1)
	if f.panics {
		panic("vendor client bug")
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return f.ids, nil
}

func (f *fakeVendor) AgentByAccount(ctx context.Context, tenant, account string) (Account, error) {
	f.accounts.Add(1)
	if f.panics {
		panic("vendor client bug")
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return Account{}, ctx.Err()
		}
	}
	if f.accErr != nil {
		return Account{}, f.accErr
	}
	return f.acc, nil
}

func boolp(b bool) *bool { return &b }

// Every endpoint answers what the scripted events say, including the
// softphone/phone join, deletions, visibility and pagination.
func TestEndpointsMatchGroundTruth(t *testing.T) {
	e := newEnv(t, nil, Config{})
	t0 := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	t1 := t0.Add(10 * time.Second)
	e.br.calls(1001, []string{"c1", "c2"}, t0)
	e.br.calls(1002, []string{}, t0)
	e.br.softphone(1001, &schemas.AgentSoftphone{SIPAccount: "88001", SIPServerIP: "10.0.0.1", SIPServerPort: 5060}, t0)
	e.br.softphone(1002, &schemas.AgentSoftphone{SIPAccount: "88002", SIPServerIP: "10.0.0.1", SIPServerPort: 5060}, t0)
	e.br.phone("88001", 0, t0)
	e.br.phone("88002", 1, t0)
	e.br.phone("88003", 0, t0)
	last := e.br.calls(1001, []string{"c2"}, t1)

	var calls schemas.AgentCallsResponse
	askOK(t, e.nc, schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1001, ReadOptions: schemas.ReadOptions{MinSeq: last}}, &calls)
	if !slices.Equal(calls.CallIDs, []string{"c2"}) || calls.Seq != 2 || calls.StreamSeq < last || !calls.Visible ||
		calls.Observed == nil || !calls.Observed.Equal(t1) || calls.Live || calls.Tenant != "dev" {
		t.Fatalf("agent.calls 1001 = %+v", calls)
	}
	askOK(t, e.nc, schemas.LookupAgentCalls, map[string]any{"work_no": 1002}, &calls)
	if len(calls.CallIDs) != 0 || calls.CallIDs == nil || calls.Seq != 1 {
		t.Fatalf("agent.calls 1002 = %+v", calls)
	}

	var sp schemas.AgentSoftphoneResponse
	askOK(t, e.nc, schemas.LookupAgentSoftphone, map[string]any{"work_no": 1001}, &sp)
	if sp.SIPAccount != "88001" || sp.SIPServerIP != "10.0.0.1" || sp.SIPServerPort != 5060 || !sp.Registered ||
		sp.PhoneStatus != schemas.PhoneRegistered || sp.PhoneStatusCode == nil || *sp.PhoneStatusCode != 0 || sp.Seq != 1 {
		t.Fatalf("agent.softphone 1001 = %+v", sp)
	}
	askOK(t, e.nc, schemas.LookupAgentSoftphone, map[string]any{"work_no": 1002}, &sp)
	if sp.Registered || sp.PhoneStatus != schemas.PhoneSuspended || *sp.PhoneStatusCode != 1 {
		t.Fatalf("agent.softphone 1002 = %+v", sp)
	}

	var ph schemas.PhoneStateResponse
	askOK(t, e.nc, schemas.LookupPhoneState, map[string]any{"phone_num": "88002"}, &ph)
	if ph.Status != schemas.PhoneSuspended || ph.StatusCode != 1 || ph.Seq != 1 || ph.PhoneNum != "88002" {
		t.Fatalf("phone.state = %+v", ph)
	}

	var agents schemas.AgentsListResponse
	askOK(t, e.nc, schemas.LookupAgentsList, map[string]any{}, &agents)
	if len(agents.Agents) != 2 || agents.Agents[0].WorkNo != 1001 || agents.Agents[1].WorkNo != 1002 || agents.NextCursor != "" {
		t.Fatalf("agents.list = %+v", agents)
	}
	askOK(t, e.nc, schemas.LookupAgentsList, map[string]any{"in_call": true}, &agents)
	if len(agents.Agents) != 1 || agents.Agents[0].WorkNo != 1001 || !agents.Agents[0].InCall || agents.Agents[0].SIPAccount != "88001" {
		t.Fatalf("agents.list in_call = %+v", agents)
	}
	askOK(t, e.nc, schemas.LookupAgentsList, map[string]any{"limit": 1}, &agents)
	if len(agents.Agents) != 1 || agents.Agents[0].WorkNo != 1001 || agents.NextCursor != "1001" {
		t.Fatalf("agents.list page 1 = %+v", agents)
	}
	askOK(t, e.nc, schemas.LookupAgentsList, map[string]any{"limit": 1, "cursor": agents.NextCursor}, &agents)
	if len(agents.Agents) != 1 || agents.Agents[0].WorkNo != 1002 || agents.NextCursor != "" {
		t.Fatalf("agents.list page 2 = %+v", agents)
	}
	askOK(t, e.nc, schemas.LookupAgentsList, map[string]any{"offset": 1}, &agents)
	if len(agents.Agents) != 1 || agents.Agents[0].WorkNo != 1002 {
		t.Fatalf("agents.list offset 1 = %+v", agents)
	}

	var phones schemas.PhonesListResponse
	askOK(t, e.nc, schemas.LookupPhonesList, map[string]any{"registered": true, "limit": 1}, &phones)
	if len(phones.Phones) != 1 || phones.Phones[0].PhoneNum != "88001" || phones.NextCursor != "88001" {
		t.Fatalf("phones.list registered page 1 = %+v", phones)
	}
	askOK(t, e.nc, schemas.LookupPhonesList, map[string]any{"registered": true, "cursor": phones.NextCursor}, &phones)
	if len(phones.Phones) != 1 || phones.Phones[0].PhoneNum != "88003" || phones.NextCursor != "" {
		t.Fatalf("phones.list registered page 2 = %+v", phones)
	}

	// Deleting 1002's calls: agent.calls is 404, the agent stays listed
	// through its softphone.
	seq := e.br.calls(1002, nil, t1)
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentCalls, map[string]any{"work_no": 1002, "min_seq": seq}); code != "404" {
		t.Fatalf("deleted calls: code %q", code)
	}
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentCalls, map[string]any{"work_no": 1500}); code != "404" {
		t.Fatalf("unknown agent: code %q", code)
	}
	if _, code := ask(t, e.nc, "dev", schemas.LookupPhoneState, map[string]any{"phone_num": "99999"}); code != "404" {
		t.Fatalf("unknown phone: code %q", code)
	}

	// Visibility: 1001's calls lost, then restored; its state stands.
	seq = e.br.visibility(schemas.VisibilityLost, schemas.ScopeCalls, "1001,1500-1600")
	askOK(t, e.nc, schemas.LookupAgentCalls, map[string]any{"work_no": 1001, "min_seq": seq}, &calls)
	if calls.Visible || !slices.Equal(calls.CallIDs, []string{"c2"}) {
		t.Fatalf("lost agent = %+v", calls)
	}
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentCalls, map[string]any{"work_no": 1001, "require_visible": true}); code != "409" {
		t.Fatalf("require_visible on a lost agent: code %q", code)
	}
	askOK(t, e.nc, schemas.LookupAgentsList, map[string]any{"visible": false}, &agents)
	if len(agents.Agents) != 1 || agents.Agents[0].WorkNo != 1001 {
		t.Fatalf("agents.list visible=false = %+v", agents)
	}
	seq = e.br.visibility(schemas.VisibilityLost, schemas.ScopePhones, "")
	if _, code := ask(t, e.nc, "dev", schemas.LookupPhoneState, map[string]any{"phone_num": "88001", "min_seq": seq, "require_visible": true}); code != "409" {
		t.Fatalf("require_visible on lost phones: code %q", code)
	}
	seq = e.br.visibility(schemas.VisibilityRestored, schemas.ScopeCalls, "1001")
	askOK(t, e.nc, schemas.LookupAgentCalls, map[string]any{"work_no": 1001, "min_seq": seq, "require_visible": true}, &calls)
	if !calls.Visible {
		t.Fatalf("restored agent = %+v", calls)
	}
}

// A caller that got a publish ack reads its own write; a sequence the
// stream never reaches times out with 504 after the request's wait.
func TestMinSeq(t *testing.T) {
	e := newEnv(t, nil, Config{})
	for i := range 20 {
		seq := e.br.calls(1001, []string{fmt.Sprint("call-", i)}, time.Now())
		var r schemas.AgentCallsResponse
		askOK(t, e.nc, schemas.LookupAgentCalls, map[string]any{"work_no": 1001, "min_seq": seq}, &r)
		if r.StreamSeq < seq || !slices.Equal(r.CallIDs, []string{fmt.Sprint("call-", i)}) || r.Seq != uint64(i+1) {
			t.Fatalf("after publish %d (seq %d): %+v", i, seq, r)
		}
	}
	start := time.Now()
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentCalls, map[string]any{"work_no": 1001, "min_seq": 1 << 40, "wait": "50ms"}); code != "504" {
		t.Fatalf("unreachable min_seq: code %q", code)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatal("wait bound ignored")
	}
	// A waiter is woken by the event it waits for.
	next := e.view.Applied() + 1
	type res struct {
		body []byte
		code string
	}
	got := make(chan res, 1)
	go func() {
		msg, err := e.nc.Request(schemas.LookupSubject("dev", schemas.LookupAgentCalls),
			[]byte(fmt.Sprintf(`{"work_no":1001,"min_seq":%d,"wait":"10s"}`, next)), 10*time.Second)
		if err != nil {
			got <- res{code: err.Error()}
			return
		}
		got <- res{msg.Data, msg.Header.Get("Nats-Service-Error-Code")}
	}()
	testwait.Until(t, "waiter queued", func() bool {
		info, ok := endpointStats(t, e.nc, e.svc)["dev-agent_calls"]
		return ok && info.NumRequests >= 22
	})
	e.br.calls(1001, []string{"woken"}, time.Now())
	r := <-got
	if r.code != "" || !strings.Contains(string(r.body), "woken") {
		t.Fatalf("woken waiter got %q %s", r.code, r.body)
	}
}

// max_age older than the view's observation goes live, and 100 concurrent
// requests for one agent make one vendor call.
func TestMaxAgeLiveSingleFlight(t *testing.T) {
	v := &fakeVendor{gate: make(chan struct{}), ids: []string{"live-1"}}
	e := newEnv(t, v, Config{Workers: 128})
	seq := e.br.calls(1001, []string{"old"}, time.Now().Add(-time.Minute))

	var fresh schemas.AgentCallsResponse
	askOK(t, e.nc, schemas.LookupAgentCalls, map[string]any{"work_no": 1001, "min_seq": seq, "max_age": "1h"}, &fresh)
	if fresh.Live || fresh.CallIDs[0] != "old" || v.calls.Load() != 0 {
		t.Fatalf("max_age within the observation went live: %+v", fresh)
	}

	const n = 100
	var wg sync.WaitGroup
	answers := make([]schemas.AgentCallsResponse, n)
	codes := make([]string, n)
	for i := range n {
		wg.Go(func() {
			msg, err := e.nc.Request(schemas.LookupSubject("dev", schemas.LookupAgentCalls), []byte(`{"work_no":1001,"max_age":"1s"}`), 10*time.Second)
			if err != nil {
				codes[i] = err.Error()
				return
			}
			codes[i] = msg.Header.Get("Nats-Service-Error-Code")
			_ = json.Unmarshal(msg.Data, &answers[i])
		})
	}
	testwait.Until(t, "all requests waiting on the flight", func() bool { return e.svc.Stats().LiveWaiting == n })
	close(v.gate)
	wg.Wait()
	for i := range n {
		if codes[i] != "" || !answers[i].Live || !slices.Equal(answers[i].CallIDs, []string{"live-1"}) || answers[i].Seq != 1 {
			t.Fatalf("answer %d: code %q %+v", i, codes[i], answers[i])
		}
	}
	if got := v.calls.Load(); got != 1 {
		t.Fatalf("vendor called %d times for %d concurrent requests", got, n)
	}
	// An agent the view does not know is fetched live too.
	var r schemas.AgentCallsResponse
	askOK(t, e.nc, schemas.LookupAgentCalls, map[string]any{"work_no": 4242, "max_age": "0s"}, &r)
	if !r.Live || r.Seq != 0 || r.Observed == nil {
		t.Fatalf("unknown agent live = %+v", r)
	}
}

func TestAgentByAccount(t *testing.T) {
	v := &fakeVendor{acc: Account{WorkNo: 1001, AgentType: 4, AgentStatus: "0"}}
	e := newEnv(t, v, Config{})
	var r schemas.AgentByAccountResponse
	askOK(t, e.nc, schemas.LookupAgentByAccount, map[string]any{"account": "alice"}, &r)
	if r.WorkNo != 1001 || r.AgentType != 4 || r.AgentStatus != "0" || !r.Live || r.Account != "alice" {
		t.Fatalf("first = %+v", r)
	}
	askOK(t, e.nc, schemas.LookupAgentByAccount, map[string]any{"account": "alice"}, &r)
	if r.Live || r.WorkNo != 1001 || v.accounts.Load() != 1 {
		t.Fatalf("cached = %+v, vendor calls %d", r, v.accounts.Load())
	}
	askOK(t, e.nc, schemas.LookupAgentByAccount, map[string]any{"account": "alice", "max_age": "0s"}, &r)
	if !r.Live || v.accounts.Load() != 2 {
		t.Fatalf("max_age 0 = %+v, vendor calls %d", r, v.accounts.Load())
	}
}

// Vendor failures map to the documented codes; a panicking fetcher is
// recovered, counted and answered 500, and the service keeps answering.
func TestLiveFailures(t *testing.T) {
	v := &fakeVendor{}
	e := newEnv(t, v, Config{LiveTimeout: 50 * time.Millisecond})
	e.settle(t, e.br.calls(1001, []string{"c"}, time.Now()))

	v.accErr = fmt.Errorf("adapter: %w", ErrNotFound)
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentByAccount, map[string]any{"account": "ghost"}); code != "404" {
		t.Fatalf("not found: %q", code)
	}
	v.accErr = errors.New("vendor said 500 with secret=abc")
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentByAccount, map[string]any{"account": "bob"}); code != "503" {
		t.Fatalf("upstream error: %q", code)
	}
	v.accErr, v.gate = nil, make(chan struct{}) // never opened: the fetch hits LiveTimeout
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentByAccount, map[string]any{"account": "slow"}); code != "504" {
		t.Fatalf("slow vendor: %q", code)
	}
	v.gate, v.panics = nil, true
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentCalls, map[string]any{"work_no": 1001, "max_age": "0s"}); code != "500" {
		t.Fatalf("panicking fetcher: %q", code)
	}
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentByAccount, map[string]any{"account": "carol"}); code != "500" {
		t.Fatalf("panicking fetcher: %q", code)
	}
	if got := e.svc.Panics(); got != 2 {
		t.Fatalf("panics = %d", got)
	}
	var r schemas.AgentCallsResponse
	askOK(t, e.nc, schemas.LookupAgentCalls, map[string]any{"work_no": 1001}, &r)
	// The counter is exposed in $SRV.STATS too.
	st := endpointStats(t, e.nc, e.svc)["dev-agent_calls"]
	var data Stats
	if err := json.Unmarshal(st.Data, &data); err != nil || data.Panics != 2 {
		t.Fatalf("stats data %s: %v", st.Data, err)
	}
}

func TestNoLiveFetcher(t *testing.T) {
	e := newEnv(t, nil, Config{})
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentByAccount, map[string]any{"account": "a"}); code != "503" {
		t.Fatalf("no fetcher: %q", code)
	}
}

// A saturated pool answers 503 at once instead of queueing without bound.
func TestSaturation(t *testing.T) {
	v := &fakeVendor{gate: make(chan struct{})}
	e := newEnv(t, v, Config{Workers: 1, Backlog: 1})
	inbox := nats.NewInbox()
	sub, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	// Three accounts: one runs, one queues, the third is refused.
	for _, acc := range []string{"a", "b", "c"} {
		if err := e.nc.PublishRequest(schemas.LookupSubject("dev", schemas.LookupAgentByAccount), inbox, []byte(`{"account":"`+acc+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get("Nats-Service-Error-Code"); code != "503" {
		t.Fatalf("first reply while saturated: %q %s", code, msg.Data)
	}
	close(v.gate)
	for range 2 {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code := msg.Header.Get("Nats-Service-Error-Code"); code != "" {
			t.Fatalf("queued request: %q", code)
		}
	}
	if e.svc.Stats().Rejected != 1 {
		t.Fatalf("rejected = %d", e.svc.Stats().Rejected)
	}
}

// Every kind of bad input gets 400 and the service keeps answering.
func TestBadInputs(t *testing.T) {
	e := newEnv(t, &fakeVendor{}, Config{})
	e.settle(t, e.br.calls(1001, []string{"c"}, time.Now()))
	big := `{"work_no":1001,"max_age":"` + strings.Repeat("1", 70<<10) + `s"}`
	cases := []struct {
		name, endpoint, body string
	}{
		{"malformed", schemas.LookupAgentCalls, `{"work_no":`},
		{"not an object", schemas.LookupAgentCalls, `[1001]`},
		{"unknown field", schemas.LookupAgentCalls, `{"work_no":1001,"agent":1}`},
		{"trailing data", schemas.LookupAgentCalls, `{"work_no":1001} {}`},
		{"wrong type", schemas.LookupAgentCalls, `{"work_no":"1001"}`},
		{"missing work_no", schemas.LookupAgentCalls, `{}`},
		{"empty body", schemas.LookupAgentSoftphone, ``},
		{"work_no too low", schemas.LookupAgentCalls, `{"work_no":100}`},
		{"work_no too high", schemas.LookupAgentSoftphone, `{"work_no":1000000}`},
		{"state without work_no", schemas.LookupAgentState, `{"min_seq":1}`},
		{"state unknown field", schemas.LookupAgentState, `{"work_no":1001,"max_age":"1s"}`},
		{"oversized", schemas.LookupAgentCalls, big},
		{"empty account", schemas.LookupAgentByAccount, `{"account":""}`},
		{"account wildcard", schemas.LookupAgentByAccount, `{"account":"a*"}`},
		{"account newline", schemas.LookupAgentByAccount, `{"account":"a\nb"}`},
		{"phone dot", schemas.LookupPhoneState, `{"phone_num":"880.01"}`},
		{"phone star", schemas.LookupPhoneState, `{"phone_num":"*"}`},
		{"phone gt", schemas.LookupPhoneState, `{"phone_num":">"}`},
		{"phone empty", schemas.LookupPhoneState, `{"phone_num":""}`},
		{"wait too long", schemas.LookupAgentCalls, `{"work_no":1001,"wait":"11s"}`},
		{"wait garbage", schemas.LookupAgentCalls, `{"work_no":1001,"wait":"soon"}`},
		{"negative max_age", schemas.LookupAgentCalls, `{"work_no":1001,"max_age":"-1s"}`},
		{"limit too big", schemas.LookupAgentsList, `{"limit":1001}`},
		{"negative offset", schemas.LookupPhonesList, `{"offset":-1}`},
		{"bad agent cursor", schemas.LookupAgentsList, `{"cursor":"abc"}`},
		{"bad phone cursor", schemas.LookupPhonesList, `{"cursor":"a.b"}`},
		{"unknown filter", schemas.LookupPhonesList, `{"in_call":true}`},
		{"unknown field newline", schemas.LookupAgentCalls, `{"a\nb":1}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, err := e.nc.Request(schemas.LookupSubject("dev", c.endpoint), []byte(c.body), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code := msg.Header.Get("Nats-Service-Error-Code"); code != "400" {
				t.Fatalf("code %q, body %s", code, msg.Data)
			}
			if d := msg.Header.Get("Nats-Service-Error"); d == "" || strings.ContainsAny(d, "\r\n") {
				t.Fatalf("description %q", d)
			}
			var r schemas.AgentCallsResponse
			askOK(t, e.nc, schemas.LookupAgentCalls, map[string]any{"work_no": 1001}, &r)
		})
	}
}

// Two instances in one queue group share the load and agree.
func TestQueueGroupInstancesAgree(t *testing.T) {
	e := newEnv(t, nil, Config{})
	_, svc2 := startInstance(t, e.srv, nil, Config{Tenants: []string{"dev"}})
	var last uint64
	for i := range 10 {
		last = e.br.calls(1001+i, []string{fmt.Sprint("c", i)}, time.Now())
	}
	const n = 200
	var first []byte
	for i := range n {
		body, code := ask(t, e.nc, "dev", schemas.LookupAgentCalls, fmt.Sprintf(`{"work_no":1005,"min_seq":%d}`, last))
		if code != "" {
			t.Fatalf("request %d: %s", i, code)
		}
		if first == nil {
			first = body
		} else if string(body) != string(first) {
			t.Fatalf("instances disagree:\n%s\n%s", first, body)
		}
	}
	a := endpointStats(t, e.nc, e.svc)["dev-agent_calls"].NumRequests
	b := endpointStats(t, e.nc, svc2)["dev-agent_calls"].NumRequests
	if a == 0 || b == 0 || a+b != n {
		t.Fatalf("requests per instance: %d and %d", a, b)
	}
}

// The service is discoverable and describes its endpoints.
func TestDiscovery(t *testing.T) {
	e := newEnv(t, nil, Config{Tenants: []string{"dev", "prod"}})
	msg, err := e.nc.Request("$SRV.INFO.cecbridge", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != "cecbridge" || info.Version != "0.1.0" || len(info.Endpoints) != 2*len(schemas.LookupEndpoints) {
		t.Fatalf("info: %+v", info)
	}
	for _, ep := range info.Endpoints {
		if ep.QueueGroup != "cecbridge" || ep.Metadata["request_schema"] == "" || ep.Metadata["description"] == "" ||
			!strings.HasPrefix(ep.Subject, "cec.lookup."+ep.Metadata["tenant"]+".") {
			t.Fatalf("endpoint %+v", ep)
		}
		if !strings.HasSuffix(ep.Metadata["response_schema"], ".response.json") {
			t.Fatalf("endpoint %+v", ep)
		}
	}
	if _, err := e.nc.Request("$SRV.PING.cecbridge", nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := NewService(context.Background(), e.nc, e.view, nil, Config{}); err == nil {
		t.Fatal("service without tenants accepted")
	}
	if _, err := NewService(context.Background(), e.nc, e.view, nil, Config{Tenants: []string{"a.b"}}); err == nil {
		t.Fatal("bad tenant accepted")
	}
	if _, err := NewService(context.Background(), e.nc, e.view, nil, Config{Tenants: []string{"x"}, Version: "one"}); err == nil {
		t.Fatal("bad version accepted")
	}
}

// endpointStats reads one instance's STATS over NATS, by endpoint name.
func endpointStats(t *testing.T, nc *nats.Conn, s *Service) map[string]*micro.EndpointStats {
	t.Helper()
	msg, err := nc.Request("$SRV.STATS.cecbridge."+s.Micro().Info().ID, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var st micro.Stats
	if err := json.Unmarshal(msg.Data, &st); err != nil {
		t.Fatal(err)
	}
	out := map[string]*micro.EndpointStats{}
	for _, ep := range st.Endpoints {
		out[ep.Name] = ep
	}
	return out
}

// The request types, as Go callers build them, satisfy the request schemas.
func TestRequestsMatchSchemas(t *testing.T) {
	reqs := map[string]any{
		schemas.LookupAgentCalls:     schemas.AgentCallsRequest{WorkNo: 1001, MaxAge: "1.5s", ReadOptions: schemas.ReadOptions{MinSeq: 3, Wait: "500ms", RequireVisible: true}},
		schemas.LookupAgentSoftphone: schemas.AgentSoftphoneRequest{WorkNo: 101},
		schemas.LookupAgentState:     schemas.AgentStateRequest{WorkNo: 999999, ReadOptions: schemas.ReadOptions{AsOf: "2026-03-01T09:30:00Z", RequireVisible: true}},
		schemas.LookupAgentByAccount: schemas.AgentByAccountRequest{Account: "alice", MaxAge: "1m"},
		schemas.LookupPhoneState:     schemas.PhoneStateRequest{PhoneNum: "+8613800000000"},
		schemas.LookupAgentsList:     schemas.AgentsListRequest{ListRequest: schemas.ListRequest{Limit: 1000, Cursor: "1001"}, InCall: boolp(true), Visible: boolp(false), MinSeq: 1, Wait: "2s"},
		schemas.LookupPhonesList:     schemas.PhonesListRequest{ListRequest: schemas.ListRequest{Offset: 10}, Registered: boolp(false)},
	}
	for ep, r := range reqs {
		body, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		schematest.ValidateJSON(t, schemas.LookupSchemaFile(ep, "request"), body)
	}
	if err := schematest.CheckJSON(schemas.LookupSchemaFile(schemas.LookupAgentCalls, "request"), []byte(`{"work_no":100}`)); err == nil {
		t.Fatal("schema accepts work_no 100")
	}
}
