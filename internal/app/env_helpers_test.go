package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/audit"
	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/internal/devstack"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// Helpers of the end-to-end tests: a NATS server and a simulator with
// bridges started on them (env), and a reader of the events stream.

const tenant = "acme"

// stored is one event as JetStream holds it.
type stored struct {
	seq     uint64
	subject string
	ev      schemas.Event
	body    []byte
}

// streamReader follows CEC_EVENTS from the start with an ordered consumer.
type streamReader struct {
	mu     sync.Mutex
	events []stored
}

// readStream starts a streamReader; opts tune its pulls (a short expiry
// notices a dead server sooner).
func readStream(t *testing.T, js jetstream.JetStream, opts ...jetstream.PullConsumeOpt) *streamReader {
	t.Helper()
	r := &streamReader{}
	ctx := t.Context()
	var cons jetstream.Consumer
	testwait.Until(t, "the events stream", func() bool {
		c, err := js.OrderedConsumer(ctx, schemas.EventsStream, jetstream.OrderedConsumerConfig{})
		cons = c
		return err == nil
	})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		var ev schemas.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			t.Errorf("undecodable event on %s: %v", m.Subject(), err)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, stored{seq: md.Sequence.Stream, subject: m.Subject(), ev: ev, body: slices.Clone(m.Data())})
		r.mu.Unlock()
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return r
}

func (r *streamReader) on(subject string) []stored {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []stored
	for _, s := range r.events {
		if s.subject == subject {
			out = append(out, s)
		}
	}
	return out
}

func (r *streamReader) all() []stored {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *streamReader) calls(t *testing.T, workNo int) [][]string {
	t.Helper()
	var out [][]string
	for _, s := range r.on(schemas.AgentCallsSubject(tenant, workNo)) {
		var ch schemas.Change[schemas.AgentCalls]
		if err := json.Unmarshal(s.ev.Data, &ch); err != nil {
			t.Fatal(err)
		}
		if ch.After == nil {
			out = append(out, nil)
		} else {
			out = append(out, ch.After.CallIDs)
		}
	}
	return out
}

func (r *streamReader) visibility(t *testing.T, state, scope string) int {
	n := 0
	for _, s := range r.on(schemas.BridgeSubject(tenant, schemas.BridgeVisibility)) {
		var v schemas.Visibility
		if err := json.Unmarshal(s.ev.Data, &v); err != nil {
			t.Fatal(err)
		}
		if v.State == state && v.Scope == scope {
			n++
		}
	}
	return n
}

// checkHistory validates every event and applies the history rules of
// package audit (seq from 1 with no holes or repeats, prev_id chained, ids
// derived from subject and seq, detected windows forward) to what the
// reader holds, which is the stream from its first message. It returns the
// checker, for its counts.
func (r *streamReader) checkHistory(t *testing.T) *audit.Checker {
	t.Helper()
	c := audit.NewChecker(audit.Start{FromFirst: true})
	for _, s := range r.all() {
		schematest.ValidateEvent(t, s.body)
		for _, f := range c.Check(s.seq, s.subject, s.body) {
			if f.Defect() {
				t.Errorf("history: %s", f)
			}
		}
	}
	return c
}

type env struct {
	srv    *natstest.Server
	sim    *cecsim.Sim
	cfg    configs.Bridge
	js     jetstream.JetStream
	nc     *nats.Conn
	events *streamReader
	starts int // instances started, each under its own name
}

func newEnv(t *testing.T, agents int) *env {
	t.Helper()
	return newEnvWith(t, cecsim.Config{Agents: agents})
}

// newEnvWith is newEnv with a simulator of the given configuration (its
// session timers are set for tests).
func newEnvWith(t *testing.T, simCfg cecsim.Config) *env {
	t.Helper()
	srv := natstest.RunServer(t)
	sim := devstack.StartSim(t, simCfg)
	nc := srv.Connect(t)
	js := natstest.JetStream(t, nc)
	return &env{srv: srv, sim: sim, cfg: devstack.BridgeConfig(tenant, srv.URL(), sim.URL()), js: js, nc: nc}
}

// start runs a bridge on its own connection until the returned stop is
// called (or the test ends).
func (e *env) start(t *testing.T) (stop func()) {
	t.Helper()
	nc := e.srv.Connect(t, nats.ReconnectBufSize(-1))
	e.starts++
	cfg := e.cfg
	cfg.Instance = fmt.Sprintf("instance-%d", e.starts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, cfg, nc, slog.New(slog.DiscardHandler)) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("bridge: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (e *env) waitSnapshots(t *testing.T) {
	t.Helper()
	testwait.Until(t, "snapshots of every agent", func() bool {
		for _, w := range e.sim.Agents() {
			if len(e.events.on(schemas.AgentCallsSubject(tenant, w))) == 0 ||
				len(e.events.on(schemas.AgentSoftphoneSubject(tenant, w))) == 0 {
				return false
			}
		}
		return true
	})
}
