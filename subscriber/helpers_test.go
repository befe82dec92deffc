package subscriber

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// createStreams lays the two streams out as the publisher does: every event
// in CEC_EVENTS, the last one per subject in CEC_STATE (sourced).
func createStreams(tb testing.TB, js jetstream.JetStream) {
	tb.Helper()
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: DefaultEventsStream, Subjects: []string{schemas.AllEvents},
		Storage: jetstream.MemoryStorage, Duplicates: time.Minute}); err != nil {
		tb.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: DefaultStateStream, MaxMsgsPerSubject: 1,
		Storage: jetstream.MemoryStorage, Sources: []*jetstream.StreamSource{{Name: DefaultEventsStream}}}); err != nil {
		tb.Fatal(err)
	}
}

// bridge publishes events the way the poller and publisher would: one
// per-entity seq per subject, deterministic IDs.
type bridge struct {
	tb     testing.TB
	js     jetstream.JetStream
	mu     sync.Mutex
	seqs   map[string]uint64
	prev   map[string]string
	last   map[string]any // subject -> last published state (a *T)
	tenant string
}

func newBridge(tb testing.TB, js jetstream.JetStream, tenant string) *bridge {
	return &bridge{tb: tb, js: js, seqs: map[string]uint64{}, prev: map[string]string{}, last: map[string]any{}, tenant: tenant}
}

func (b *bridge) publish(subject, typ string, data func(seq uint64, prev string) any) uint64 {
	b.tb.Helper()
	b.mu.Lock()
	seq := b.seqs[subject] + 1
	prev := b.prev[subject]
	id := schemas.EventID(subject, seq)
	b.seqs[subject], b.prev[subject] = seq, id
	payload := data(seq, prev)
	b.mu.Unlock()
	raw, err := json.Marshal(payload)
	if err != nil {
		b.tb.Fatal(err)
	}
	ev := schemas.Event{SpecVersion: schemas.SpecVersion, ID: id, Source: "cecbridge/test", Type: typ, Subject: subject,
		Time: time.Now().UTC(), DataContentType: schemas.ContentType, DataSchema: schemas.DataSchema(typ), Data: raw}
	body, err := json.Marshal(ev)
	if err != nil {
		b.tb.Fatal(err)
	}
	schematest.ValidateEvent(b.tb, body)
	ack, err := b.js.Publish(context.Background(), subject, body, jetstream.WithMsgID(id))
	if err != nil {
		b.tb.Fatal(err)
	}
	return ack.Sequence
}

func op(seq uint64, before, after bool) schemas.Op {
	switch {
	case seq == 1:
		return schemas.OpSnapshot
	case !after:
		return schemas.OpDelete
	case !before:
		return schemas.OpCreate
	default:
		return schemas.OpUpdate
	}
}

// change builds the payload of the next event of an entity: before is the
// state the bridge published last for it.
func change[T any](b *bridge, subject string, key schemas.Key, after *T, byPoll time.Time) func(uint64, string) any {
	return func(seq uint64, prev string) any {
		before, _ := b.last[subject].(*T)
		b.last[subject] = after
		c := schemas.Change[T]{Op: op(seq, before != nil, after != nil), Key: key, Seq: seq, PrevID: prev,
			Before: before, After: after, Detected: schemas.Detected{ByPoll: byPoll}}
		if seq > 1 {
			ap := byPoll.Add(-time.Second)
			c.Detected.AfterPoll = &ap
		}
		return c
	}
}

// calls publishes an agent's call IDs; nil deletes the entity.
func (b *bridge) calls(workNo int, ids []string, byPoll time.Time) uint64 {
	subj := schemas.AgentCallsSubject(b.tenant, workNo)
	var after *schemas.AgentCalls
	if ids != nil {
		after = &schemas.AgentCalls{CallIDs: ids}
	}
	return b.publish(subj, schemas.TypeAgentCalls, change(b, subj, schemas.Key{Tenant: b.tenant, WorkNo: workNo}, after, byPoll))
}

func (b *bridge) softphone(workNo int, sp *schemas.AgentSoftphone, byPoll time.Time) uint64 {
	subj := schemas.AgentSoftphoneSubject(b.tenant, workNo)
	return b.publish(subj, schemas.TypeAgentSoftphone, change(b, subj, schemas.Key{Tenant: b.tenant, WorkNo: workNo}, sp, byPoll))
}

// state publishes an agent's CTI state, as the CMS sweep does; nil
// deletes the entity.
func (b *bridge) state(workNo int, st *schemas.AgentState, byPoll time.Time) uint64 {
	subj := schemas.AgentStateSubject(b.tenant, workNo)
	return b.publish(subj, schemas.TypeAgentState, change(b, subj, schemas.Key{Tenant: b.tenant, WorkNo: workNo}, st, byPoll))
}

func (b *bridge) phone(num string, code int, byPoll time.Time) uint64 {
	subj := schemas.PhoneStateSubject(b.tenant, num)
	after := &schemas.PhoneState{Status: schemas.PhoneStatus(code), StatusCode: code}
	return b.publish(subj, schemas.TypePhoneState, change(b, subj, schemas.Key{Tenant: b.tenant, PhoneNum: num}, after, byPoll))
}

func (b *bridge) visibility(state, scope, agents string) uint64 {
	subj := schemas.BridgeSubject(b.tenant, schemas.BridgeVisibility)
	return b.publish(subj, schemas.TypeBridgeVisibility, func(seq uint64, prev string) any {
		return schemas.Visibility{Seq: seq, PrevID: prev, Tenant: b.tenant, State: state, Scope: scope, Agents: agents,
			Count: 1, Since: time.Now().UTC()}
	})
}

// env is a server, the two streams, a running view and a lookup service.
type env struct {
	srv  *natstest.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	view *View
	svc  *Service
	br   *bridge
}

func newEnv(tb testing.TB, live LiveFetcher, cfg Config) *env {
	tb.Helper()
	e := &env{srv: natstest.RunServer(tb)}
	e.nc = e.srv.Connect(tb)
	var err error
	if e.js, err = jetstream.New(e.nc); err != nil {
		tb.Fatal(err)
	}
	createStreams(tb, e.js)
	e.br = newBridge(tb, e.js, "dev")
	if len(cfg.Tenants) == 0 {
		cfg.Tenants = []string{"dev"}
	}
	e.view, e.svc = startInstance(tb, e.srv, live, cfg)
	return e
}

// startInstance starts one view and service on its own connection.
func startInstance(tb testing.TB, srv *natstest.Server, live LiveFetcher, cfg Config) (*View, *Service) {
	tb.Helper()
	nc := srv.Connect(tb)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	view, err := NewView(js, ViewConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- view.Run(ctx) }()
	svc, err := NewService(ctx, nc, view, live, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			tb.Error(err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			tb.Errorf("view.Run: %v", err)
		}
	})
	select {
	case <-view.Ready():
	case err := <-done:
		tb.Fatalf("view ended: %v", err)
	case <-time.After(10 * time.Second):
		tb.Fatal("view not ready")
	}
	return view, svc
}

// ask sends one lookup and returns the body and the error code ("" if none).
func ask(tb testing.TB, nc *nats.Conn, tenant, endpoint string, req any) ([]byte, string) {
	tb.Helper()
	return schematest.Lookup(tb, nc, tenant, endpoint, req, 5*time.Second)
}

// askOK sends a lookup that must succeed and decodes the answer into out.
func askOK(tb testing.TB, nc *nats.Conn, endpoint string, req, out any) {
	tb.Helper()
	schematest.LookupOK(tb, nc, "dev", endpoint, req, out, 5*time.Second)
}

// settle waits until the view has applied seq, so that a request without
// min_seq sees the event.
func (e *env) settle(tb testing.TB, seq uint64) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.view.WaitApplied(ctx, seq); err != nil {
		tb.Fatal(err)
	}
}
