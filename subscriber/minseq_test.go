package subscriber

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
)

// A view that follows tenant "dev" only, with its lookup service, on a
// stream that also carries tenant "other".
func newTenantEnv(t *testing.T) (*env, *bridge) {
	t.Helper()
	e := &env{srv: natstest.RunServer(t)}
	e.nc = e.srv.Connect(t)
	var err error
	if e.js, err = jetstream.New(e.nc); err != nil {
		t.Fatal(err)
	}
	createStreams(t, e.js)
	e.br = newBridge(t, e.js, "dev")
	e.view, err = NewView(e.js, ViewConfig{Tenants: []string{"dev"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.view.Run(ctx) }()
	e.svc, err = NewService(ctx, e.nc, e.view, nil, Config{Tenants: []string{"dev"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.svc.Stop(); err != nil {
			t.Error(err)
		}
		cancel()
		<-done
	})
	testwait.Until(t, "view ready", e.view.isReady)
	return e, newBridge(t, e.js, "other")
}

// A min_seq taken from another tenant's event is reached as soon as the
// view has applied its own events up to it: the lookup does not wait for
// this tenant's next event, nor time out.
func TestMinSeqOfAnotherTenantsEventDoesNotWait(t *testing.T) {
	e, other := newTenantEnv(t)
	e.br.calls(1001, []string{"c1"}, time.Now())
	foreign := other.calls(2002, []string{"x1"}, time.Now())
	start := time.Now()
	body, code := ask(t, e.nc, "dev", schemas.LookupAgentCalls, fmt.Sprintf(`{"work_no":1001,"min_seq":%d,"wait":"3s"}`, foreign))
	if code != "" || time.Since(start) > 2*time.Second {
		t.Fatalf("min_seq %d of another tenant: code %q after %s", foreign, code, time.Since(start).Round(time.Millisecond))
	}
	var r schemas.AgentCallsResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.StreamSeq < foreign || len(r.CallIDs) != 1 || r.CallIDs[0] != "c1" {
		t.Fatalf("answer %+v, want stream_seq >= %d and call c1", r, foreign)
	}
}

// nextOwn asks the stream exactly which of the view's own messages lie
// between what it has applied and a sequence.
func TestNextOwnFindsTheViewsMessagesUpToASequence(t *testing.T) {
	e, other := newTenantEnv(t)
	own1 := e.br.calls(1001, []string{"c1"}, time.Now())
	other.calls(2002, []string{"x1"}, time.Now())
	own3 := e.br.calls(1001, []string{"c2"}, time.Now())
	last := other.calls(2002, []string{"x2"}, time.Now())
	ctx := t.Context()
	for _, c := range []struct {
		after, seq, next uint64
		done             bool
	}{
		{0, last, own1, false},
		{own1, last, own3, false},
		{own3, last, 0, true},      // only another tenant's event is left
		{0, own1 - 1, 0, true},     // nothing at all up to there
		{own3, last + 5, 0, false}, // the stream has not reached it
	} {
		next, done, err := e.view.nextOwn(ctx, c.after, c.seq)
		if err != nil || next != c.next || done != c.done {
			t.Errorf("nextOwn(%d, %d) = %d, %v, %v; want %d, %v", c.after, c.seq, next, done, err, c.next, c.done)
		}
	}
}

// The wait does not end while a message of the view's own subjects at or
// before the sequence is still to be applied, and ends once it is.
func TestWaitForAnotherTenantsSequenceWaitsForOwnMessagesFirst(t *testing.T) {
	srv := natstest.RunServer(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	createStreams(t, js)
	own, other := newBridge(t, js, "dev"), newBridge(t, js, "other")
	// A view that is ready but applies only what the test hands it, so
	// that it lags on purpose.
	view, err := NewView(js, ViewConfig{Tenants: []string{"dev"}})
	if err != nil {
		t.Fatal(err)
	}
	view.readyOnce.Do(func() { close(view.ready) })
	ownSeq := own.calls(1001, []string{"c1"}, time.Now())
	foreign := other.calls(2002, []string{"x1"}, time.Now())

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := view.WaitApplied(ctx, foreign); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitApplied with an own message unapplied = %v, want a timeout", err)
	}
	done := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		done <- view.WaitApplied(wctx, foreign)
	}()
	st, err := js.Stream(t.Context(), DefaultEventsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(t.Context(), ownSeq)
	if err != nil {
		t.Fatal(err)
	}
	view.apply(m.Sequence, m.Subject, m.Data)
	if err := <-done; err != nil {
		t.Fatalf("WaitApplied after the own message was applied: %v", err)
	}
	if view.Applied() < foreign {
		t.Fatalf("applied %d, want at least %d", view.Applied(), foreign)
	}
}
