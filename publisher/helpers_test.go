package publisher_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// Helpers of the publisher's tests: a NATS server with the streams
// provisioned (env), and a reader that checks what the stream holds.

type env struct {
	srv *natstest.Server
	js  jetstream.JetStream
	cfg publisher.Config
}

func newEnv(t *testing.T, cfg publisher.Config) *env {
	t.Helper()
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, s.Connect(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := publisher.Provision(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	return &env{srv: s, js: js, cfg: cfg}
}

// start creates a publisher, runs it until the test ends, and gives it one
// writer (a term without a name or a gate: always open).
func (e *env) start(t *testing.T, cfg publisher.Config) (*publisher.Publisher, *publisher.Writer) {
	t.Helper()
	p := e.newPublisher(t, cfg)
	e.run(t, p)
	return p, p.NewWriter(publisher.WriterConfig{})
}

func (e *env) newPublisher(t *testing.T, cfg publisher.Config) *publisher.Publisher {
	t.Helper()
	p, err := publisher.New(e.js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *env) run(t *testing.T, p *publisher.Publisher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

type flusher interface {
	Flush(ctx context.Context) error
}

func flush(t *testing.T, p flusher, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func emit(t *testing.T, w *publisher.Writer, rec schemas.Record) {
	t.Helper()
	schematest.ValidateEvent(t, rec.Body)
	if err := w.Emit(context.Background(), rec); err != nil {
		t.Fatalf("Emit %s #%d: %v", rec.Subject, rec.Seq, err)
	}
}

type stored struct {
	seq   uint64 // stream sequence
	msgID string
	ev    schemas.Event
	data  schemas.Change[schemas.AgentCalls]
}

// readStream returns every message of stream by subject, in stream order.
func readStream(t *testing.T, js jetstream.JetStream, stream string) map[string][]stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	out := map[string][]stored{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		schematest.ValidateEvent(t, m.Data)
		st := stored{seq: m.Sequence, msgID: m.Header.Get(jetstream.MsgIDHeader)}
		if err := json.Unmarshal(m.Data, &st.ev); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(st.ev.Data, &st.data)
		out[m.Subject] = append(out[m.Subject], st)
	}
	return out
}

// checkChains asserts each subject holds exactly seqs 1..n[subject], once, in order.
func checkChains(t *testing.T, got map[string][]stored, want map[string]uint64) {
	t.Helper()
	for subj, n := range want {
		msgs := got[subj]
		if uint64(len(msgs)) != n {
			t.Errorf("%s: %d messages, want %d", subj, len(msgs), n)
			continue
		}
		for i, m := range msgs {
			if m.data.Seq != uint64(i+1) || m.msgID != schemas.EventID(subj, uint64(i+1)) {
				t.Errorf("%s: message %d has seq %d id %s", subj, i, m.data.Seq, m.msgID)
				break
			}
		}
	}
}
