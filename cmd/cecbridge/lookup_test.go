package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
	"github.com/cecbridge/cecbridge/subscriber"
)

// lookupFixture is an embedded JetStream server with the two event streams,
// a state view and the lookup service, plus a way to publish events as the
// bridge does.
type lookupFixture struct {
	url  string
	js   jetstream.JetStream
	seqs map[string]uint64
}

func newLookupFixture(t *testing.T) *lookupFixture {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := srv.Connect(t)
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: schemas.EventsStream, Subjects: []string{schemas.AllEvents}, Storage: jetstream.MemoryStorage,
		AllowDirect: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: schemas.StateStream, MaxMsgsPerSubject: 1, Storage: jetstream.MemoryStorage, AllowDirect: true,
		Sources: []*jetstream.StreamSource{{Name: schemas.EventsStream}}}); err != nil {
		t.Fatal(err)
	}
	view, err := subscriber.NewView(js, subscriber.ViewConfig{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- view.Run(ctx) }()
	svc, err := subscriber.NewService(ctx, nc, view, nil, subscriber.Config{Tenants: []string{"dev"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = svc.Stop()
		cancel()
		<-done
	})
	return &lookupFixture{url: srv.URL(), js: js, seqs: map[string]uint64{}}
}

func (f *lookupFixture) publish(t *testing.T, subject, typ string, data any) uint64 {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	ev := schemas.Event{SpecVersion: schemas.SpecVersion, ID: schemas.EventID(subject, f.seqs[subject]+1), Source: "test",
		Type: typ, Subject: subject, Time: time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC), DataContentType: schemas.ContentType,
		DataSchema: schemas.DataSchema(typ), Data: raw}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	schematest.ValidateEvent(t, body)
	ack, err := f.js.Publish(context.Background(), subject, body)
	if err != nil {
		t.Fatal(err)
	}
	f.seqs[subject]++
	return ack.Sequence
}

func (f *lookupFixture) calls(t *testing.T, workNo int, before, after []string) uint64 {
	subj := schemas.AgentCallsSubject("dev", workNo)
	now := time.Now().UTC()
	c := schemas.Change[schemas.AgentCalls]{Op: schemas.OpUpdate, Key: schemas.Key{Tenant: "dev", WorkNo: workNo},
		Seq: f.seqs[subj] + 1, Detected: schemas.Detected{ByPoll: now}}
	switch {
	case c.Seq == 1:
		c.Op = schemas.OpSnapshot
	case after == nil:
		c.Op = schemas.OpDelete
	case before == nil:
		c.Op = schemas.OpCreate
	}
	if c.Seq > 1 {
		ap := now.Add(-time.Second)
		c.Detected.AfterPoll, c.PrevID = &ap, schemas.EventID(subj, c.Seq-1)
	}
	if before != nil {
		c.Before = &schemas.AgentCalls{CallIDs: before}
	}
	if after != nil {
		c.After = &schemas.AgentCalls{CallIDs: after}
	}
	return f.publish(t, subj, schemas.TypeAgentCalls, c)
}

func runCLI(t *testing.T, fn func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) error, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := fn(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func lookupCLI(ctx context.Context, args []string, out, errOut *bytes.Buffer) error {
	return runLookup(ctx, args, out, errOut)
}

func tailCLI(ctx context.Context, args []string, out, errOut *bytes.Buffer) error {
	return runTail(ctx, args, out, errOut)
}

func TestLookupCommand(t *testing.T) {
	f := newLookupFixture(t)
	f.calls(t, 1001, nil, []string{"c1"})
	seq := f.calls(t, 1001, []string{"c1"}, []string{"c1", "c2"})
	sp := schemas.AgentSoftphone{SIPAccount: "88001", SIPServerIP: "10.0.0.1", SIPServerPort: 5060}
	f.publish(t, schemas.AgentSoftphoneSubject("dev", 1001), schemas.TypeAgentSoftphone, schemas.Change[schemas.AgentSoftphone]{
		Op: schemas.OpSnapshot, Key: schemas.Key{Tenant: "dev", WorkNo: 1001}, Seq: 1, After: &sp, Detected: schemas.Detected{ByPoll: time.Now()}})
	phoneSeq := f.publish(t, schemas.PhoneStateSubject("dev", "88001"), schemas.TypePhoneState, schemas.Change[schemas.PhoneState]{
		Op: schemas.OpSnapshot, Key: schemas.Key{Tenant: "dev", PhoneNum: "88001"}, Seq: 1,
		After: &schemas.PhoneState{Status: schemas.PhoneRegistered}, Detected: schemas.Detected{ByPoll: time.Now()}})
	server := "--server=" + f.url
	minSeq := "--min-seq=" + strconv.FormatUint(phoneSeq, 10)

	out, _, err := runCLI(t, lookupCLI, "agent-calls", "1001", server, minSeq)
	if err != nil || !strings.Contains(out, "agent 1001 (dev): 2 calls: c1, c2") || !strings.Contains(out, "seq 2,") {
		t.Fatalf("agent-calls: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, lookupCLI, server, "--json", "agent-calls", "1001")
	var r schemas.AgentCallsResponse
	if err != nil || json.Unmarshal([]byte(out), &r) != nil || len(r.CallIDs) != 2 || r.StreamSeq < seq {
		t.Fatalf("agent-calls --json: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, lookupCLI, "agent-softphone", "1001", server, "--tenant", "dev")
	if err != nil || !strings.Contains(out, "sip account 88001 at 10.0.0.1:5060") || !strings.Contains(out, "phone: registered") {
		t.Fatalf("agent-softphone: %v\n%s", err, out)
	}
	_, _, err = runCLI(t, lookupCLI, "agent-state", "1001", server)
	var noState *LookupError
	if !errors.As(err, &noState) || noState.Code != schemas.CodeNotFound || !strings.Contains(noState.Description, "CMS sweep") {
		t.Fatalf("agent-state without CMS: %v", err)
	}
	since := time.Now().Add(-90 * time.Second).UTC().Truncate(time.Second)
	stateSeq := f.publish(t, schemas.AgentStateSubject("dev", 1001), schemas.TypeAgentState, schemas.Change[schemas.AgentState]{
		Op: schemas.OpSnapshot, Key: schemas.Key{Tenant: "dev", WorkNo: 1001}, Seq: 1,
		After:    &schemas.AgentState{State: "talking", StateCode: 5, Since: since, PrevState: "answering"},
		Detected: schemas.Detected{ByPoll: time.Now(), Source: schemas.SourceCMS}})
	out, _, err = runCLI(t, lookupCLI, "agent-state", "1001", server, "--min-seq", strconv.FormatUint(stateSeq, 10))
	inState := time.Since(since)
	head, rest, _ := strings.Cut(out, ", for ")
	dur, _, _ := strings.Cut(rest, ",")
	printed, err2 := time.ParseDuration(dur)
	if err != nil || head != "agent 1001 (dev): talking (state code 5) since "+since.Format(time.RFC3339) || err2 != nil ||
		printed < 90*time.Second || printed > inState+time.Second || !strings.Contains(out, "before: answering") || !strings.Contains(out, "seq 1,") {
		t.Fatalf("agent-state (in state %s): %v\n%s", inState, err, out)
	}
	out, _, err = runCLI(t, lookupCLI, "phone-state", "88001", server)
	if err != nil || !strings.Contains(out, "phone 88001 (dev): registered") {
		t.Fatalf("phone-state: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, lookupCLI, "agents", server, "--in-call")
	if err != nil || !strings.Contains(out, "1001") || !strings.Contains(out, "1 agents") {
		t.Fatalf("agents: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, lookupCLI, "phones", server, "--registered=false")
	if err != nil || !strings.Contains(out, "0 phones") {
		t.Fatalf("phones: %v\n%s", err, out)
	}

	// Coded errors come back as *LookupError with the code.
	_, _, err = runCLI(t, lookupCLI, "agent-calls", "4242", server)
	var le *LookupError
	if !errors.As(err, &le) || le.Code != schemas.CodeNotFound || !strings.Contains(err.Error(), "404 (not found)") {
		t.Fatalf("unknown agent: %v", err)
	}
	_, _, err = runCLI(t, lookupCLI, "agent-calls", "5", server)
	if !errors.As(err, &le) || le.Code != schemas.CodeBadRequest {
		t.Fatalf("bad work number: %v", err)
	}
	out, _, err = runCLI(t, lookupCLI, "agent-by-account", "alice", server, "--json")
	if !errors.As(err, &le) || le.Code != schemas.CodeUnavailable || !strings.Contains(out, `"code":503`) {
		t.Fatalf("by-account without a fetcher: %v\n%s", err, out)
	}
	_, _, err = runCLI(t, lookupCLI, "agent-calls", "1001", server, "--tenant", "nobody")
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("unknown tenant: %v", err)
	}
	for _, args := range [][]string{{}, {"nonsense"}, {"agent-calls"}, {"agent-calls", "x"}, {"agents", "extra"}, {"--bogus"}} {
		if _, _, err := runCLI(t, lookupCLI, args...); !errors.Is(err, errUsage) {
			t.Fatalf("%q: %v", args, err)
		}
	}
}

func TestTailCommand(t *testing.T) {
	f := newLookupFixture(t)
	f.calls(t, 1001, nil, []string{"c1"})
	f.calls(t, 1001, []string{"c1"}, []string{"c1", "c2"})
	f.publish(t, schemas.BridgeSubject("dev", schemas.BridgeVisibility), schemas.TypeBridgeVisibility,
		schemas.Visibility{Seq: 1, Tenant: "dev", State: schemas.VisibilityLost, Scope: schemas.ScopeCalls, Agents: "101-180", Count: 80})
	f.publish(t, schemas.BridgeSubject("dev", schemas.BridgeStatesVisibility), schemas.TypeBridgeStatesVisibility,
		schemas.StatesVisibility{Seq: 1, Tenant: "dev", NotVisible: "1001-1004", Count: 4, Reason: "timeout"})
	f.calls(t, 1001, []string{"c1", "c2"}, nil)

	out, _, err := runCLI(t, tailCLI, "--server", f.url, "--seq", "1", "--count", "5")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 5 lines:\n%s", out)
	}
	for i, want := range []string{
		"#1      agent.calls      dev.agent.1001.calls  snapshot ∅ -> [c1]",
		"[c1] -> [c1,c2]",
		"bridge.visibility dev.bridge.visibility  lost calls 80 agents 101-180",
		"bridge.states_visibility dev.bridge.states_visibility  4 agents' state not visible 1001-1004 (timeout)",
		"delete   [c1,c2] -> ∅",
	} {
		if !strings.Contains(lines[i], want) || !strings.HasPrefix(lines[i], "2026-05-01T09:30:00.000Z") {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], want)
		}
	}
	// A filter relative to cec.evt, replayed by time.
	out, _, err = runCLI(t, tailCLI, "dev.bridge.>", "--server", f.url, "--since", "1h", "--count", "1")
	if err != nil || !strings.Contains(out, "dev.bridge.visibility") {
		t.Fatalf("filtered tail: %v\n%s", err, out)
	}
	// Live: only events published after the start are printed.
	got := make(chan string, 1)
	go func() {
		out, _, err := runCLI(t, tailCLI, "--server", f.url, "--count", "1")
		if err != nil {
			out = err.Error()
		}
		got <- out
	}()
	var live string
	// Republish until the tail has subscribed and printed.
	if !testwait.PollEvery(10*time.Second, 50*time.Millisecond, func() bool {
		select {
		case live = <-got:
			return true
		default:
			f.calls(t, 1003, nil, []string{"live"})
			return false
		}
	}) {
		t.Fatal("live tail printed nothing")
	}
	if !strings.Contains(live, "dev.agent.1003.calls") {
		t.Fatalf("live tail: %s", live)
	}
}

func TestTailStopsOnCancel(t *testing.T) {
	f := newLookupFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runTail(ctx, []string{"--server", f.url}, &bytes.Buffer{}, &bytes.Buffer{}) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail ignored cancellation")
	}
	if err := runTail(context.Background(), []string{"--since", "1m", "--seq", "3"}, &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, errUsage) {
		t.Fatalf("--since with --seq: %v", err)
	}
}

func TestLookupAsOf(t *testing.T) {
	f := newLookupFixture(t)
	f.calls(t, 1001, nil, []string{"c1"})
	since := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	f.publish(t, schemas.AgentStateSubject("dev", 1001), schemas.TypeAgentState, schemas.Change[schemas.AgentState]{
		Op: schemas.OpSnapshot, Key: schemas.Key{Tenant: "dev", WorkNo: 1001}, Seq: 1,
		After: &schemas.AgentState{State: "idle", StateCode: 1, Since: since}, Detected: schemas.Detected{ByPoll: time.Now()}})
	then := time.Now().UTC().Format(time.RFC3339Nano)
	seq := f.calls(t, 1001, []string{"c1"}, []string{"c1", "c2"})
	server := "--server=" + f.url

	out, _, err := runCLI(t, lookupCLI, "agent-calls", "1001", server, "--as-of", then)
	if err != nil || !strings.Contains(out, "agent 1001 (dev): 1 call: c1") || !strings.Contains(out, "as of "+then) ||
		!strings.Contains(out, "from event "+schemas.EventID(schemas.AgentCallsSubject("dev", 1001), 1)+" at stream seq 1") {
		t.Fatalf("agent-calls --as-of: %v\n%s", err, out)
	}
	// The time in state runs to the instant asked about.
	thenT, err := time.Parse(time.RFC3339Nano, then)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, lookupCLI, "agent-state", "1001", server, "--as-of", then)
	if err != nil || !strings.Contains(out, "agent 1001 (dev): idle (state code 1) since "+since.Format(time.RFC3339)+", for "+thenT.Sub(since).Round(time.Second).String()) ||
		!strings.Contains(out, "from event "+schemas.EventID(schemas.AgentStateSubject("dev", 1001), 1)) {
		t.Fatalf("agent-state --as-of: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, lookupCLI, "agents", server, "--in-call", "--as-of", "0s", "--min-seq", "0")
	if err != nil || !strings.Contains(out, "c1,c2") || !strings.Contains(out, "1 agents, stream_seq "+strconv.FormatUint(seq, 10)) {
		t.Fatalf("agents --as-of now: %v\n%s", err, out)
	}
	_, _, err = runCLI(t, lookupCLI, "agent-calls", "1001", server, "--as-of", "1h")
	var le *LookupError
	if !errors.As(err, &le) || le.Code != schemas.CodeNotVisible || !strings.Contains(le.Description, "before the events stream's retention") {
		t.Fatalf("before the retention: %v", err)
	}
	if _, _, err := runCLI(t, lookupCLI, "agent-calls", "1001", server, "--as-of", "last week"); !errors.Is(err, errUsage) {
		t.Fatalf("bad --as-of: %v", err)
	}
}
