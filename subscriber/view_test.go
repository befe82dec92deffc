package subscriber

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
)

// The view rebuilds from CEC_STATE even when CEC_EVENTS no longer holds the
// history, notes the highest origin sequence, then follows new events.
func TestViewBootstrapsFromStateThenFollows(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	createStreams(t, js)
	br := newBridge(t, js, "dev")
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	br.calls(1001, []string{"a"}, t0)
	br.calls(1001, []string{"a", "b"}, t0.Add(time.Second))
	br.softphone(1001, &schemas.AgentSoftphone{SIPAccount: "88001"}, t0)
	br.phone("88001", 0, t0)
	last := br.calls(1002, []string{}, t0)
	other := newBridge(t, js, "other")
	otherLast := other.calls(1001, []string{"x"}, t0)

	ctx := context.Background()
	state, err := js.Stream(ctx, DefaultStateStream)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "state stream sourced", func() bool {
		info, err := state.Info(ctx)
		return err == nil && info.State.LastSeq > 0 && info.State.Msgs == 5
	})
	// Age out the events stream: the view must not need it for history.
	events, err := js.Stream(ctx, DefaultEventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Purge(ctx); err != nil {
		t.Fatal(err)
	}

	view, err := NewView(js, ViewConfig{Tenants: []string{"dev"}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- view.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-view.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	if got := view.Applied(); got != last {
		t.Fatalf("applied after bootstrap = %d, want %d (the other tenant's %d is filtered out)", got, last, otherLast)
	}
	r, obs, found := view.agentCalls("dev", 1001)
	if !found || len(r.CallIDs) != 2 || r.Seq != 2 || obs != t0.Add(time.Second).UnixNano() {
		t.Fatalf("agent 1001 after bootstrap: %+v found=%v", r, found)
	}
	if _, _, found := view.agentCalls("other", 1001); found {
		t.Fatal("a tenant outside the view was applied")
	}

	seq := br.calls(1001, nil, t0.Add(2*time.Second))
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := view.WaitApplied(wctx, seq); err != nil {
		t.Fatal(err)
	}
	if _, _, found := view.agentCalls("dev", 1001); found {
		t.Fatal("deleted calls still found")
	}
	// An old event replayed (same entity seq) must not resurrect anything.
	view.apply(seq+1, "x", mustEventJSON(t, schemas.TypeAgentCalls, schemas.Change[schemas.AgentCalls]{
		Op: schemas.OpUpdate, Key: schemas.Key{Tenant: "dev", WorkNo: 1001}, Seq: 2, After: &schemas.AgentCalls{CallIDs: []string{"old"}}}))
	if _, _, found := view.agentCalls("dev", 1001); found {
		t.Fatal("stale event applied")
	}
	view.apply(seq+2, "x", []byte("{not json"))
	if view.Skipped() != 1 || view.Applied() != seq+2 {
		t.Fatalf("skipped=%d applied=%d", view.Skipped(), view.Applied())
	}

	short, scancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer scancel()
	if err := view.WaitApplied(short, seq+100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitApplied beyond the stream = %v", err)
	}
}

func TestViewEmptyStreams(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	createStreams(t, js)
	view, err := NewView(js, ViewConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- view.Run(ctx) }()
	select {
	case <-view.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready on empty streams")
	}
	seq := newBridge(t, js, "dev").phone("5000", 1, time.Now())
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := view.WaitApplied(wctx, seq); err != nil {
		t.Fatal(err)
	}
	if r, found := view.phoneState("dev", "5000"); !found || r.Status != schemas.PhoneSuspended {
		t.Fatalf("phone: %+v %v", r, found)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestNewViewRejectsBadTenant(t *testing.T) {
	if _, err := NewView(nil, ViewConfig{}); err == nil {
		t.Fatal("nil JetStream accepted")
	}
}

func mustEventJSON(t *testing.T, typ string, data any) []byte {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := json.Marshal(schemas.Event{SpecVersion: schemas.SpecVersion, ID: "x", Type: typ, Data: raw})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
