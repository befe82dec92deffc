package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/devstack"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
	"github.com/nats-io/nats.go/jetstream"
)

// readLines reads the complete lines of the log (a cut last line, as a
// crash leaves it, is not one).
func readLines(t *testing.T, path string) []line {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	rows := bytes.Split(b, []byte("\n"))
	var out []line
	for _, r := range rows[:len(rows)-1] {
		var l line
		if err := json.Unmarshal(r, &l); err != nil {
			t.Fatalf("log line %q: %v", r, err)
		}
		out = append(out, l)
	}
	return out
}

// The audit log holds every event of the stream exactly once and in order,
// across a restart with changes made while it was down, a line cut by a
// crash, and a redelivery of everything (its acknowledgements lost).
func TestAuditLogIsWholeAcrossRestarts(t *testing.T) {
	st := devstack.Start(t, cecsim.Config{Agents: 6})
	js := natstest.JetStream(t, st.NATS.Connect(t))
	path := filepath.Join(t.TempDir(), "audit.ndjson")
	cfg := config{Server: st.NATS.URL(), Stream: "CEC_EVENTS", Durable: "audit-test", Filter: "cec.evt.>", Log: path}
	var logs testbuf.Buffer
	start := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil))) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	lastSeq := func() uint64 {
		s, err := js.Stream(t.Context(), "CEC_EVENTS")
		if err != nil {
			return 0
		}
		return s.CachedInfo().State.LastSeq
	}
	caughtUp := func(seq uint64) func() bool {
		return func() bool {
			l := readLines(t, path)
			return len(l) > 0 && l[len(l)-1].StreamSeq >= seq
		}
	}

	testwait.For(t, 20*time.Second, "the bridge's first events", func() bool { return lastSeq() >= 12 })
	stop := start()
	testwait.For(t, 20*time.Second, "the first events logged", func() bool { return len(readLines(t, path)) >= 12 })
	stop()

	// Changes while the consumer is down, then a line cut by a crash.
	callID, err := st.Sim.StartCall(1003)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 20*time.Second, "the call stored", func() bool {
		s, err := js.Stream(t.Context(), "CEC_EVENTS")
		if err != nil {
			return false
		}
		m, err := s.GetLastMsgForSubject(t.Context(), schemas.AgentCallsSubject(devstack.Tenant, 1003))
		return err == nil && strings.Contains(string(m.Data), callID)
	})
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"stream_seq":99,"subj`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	stop = start()
	testwait.For(t, 20*time.Second, "caught up after the restart", caughtUp(lastSeq()))
	stop()

	// Every acknowledgement lost: the whole stream comes again.
	if err := js.DeleteConsumer(t.Context(), "CEC_EVENTS", cfg.Durable); err != nil {
		t.Fatal(err)
	}
	stop = start()
	end := lastSeq()
	testwait.For(t, 20*time.Second, "caught up after the redelivery", caughtUp(end))
	testwait.For(t, 20*time.Second, "the redelivery acknowledged", func() bool {
		c, err := js.Consumer(t.Context(), "CEC_EVENTS", cfg.Durable)
		return err == nil && c.CachedInfo().AckFloor.Stream >= end
	})
	stop()

	lines := readLines(t, path)
	stream, err := js.Stream(t.Context(), "CEC_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	sawCall := false
	for i, l := range lines {
		if l.StreamSeq != uint64(i+1) {
			t.Fatalf("line %d holds stream seq %d: a gap or a repeat", i, l.StreamSeq)
		}
		m, err := stream.GetMsg(t.Context(), l.StreamSeq)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Data, l.Event) || m.Subject != l.Subject || l.ID != schemas.EventID(l.Subject, l.Seq) {
			t.Fatalf("line %d is not the stored event %d", i, l.StreamSeq)
		}
		sawCall = sawCall || strings.Contains(string(l.Event), callID)
	}
	if !sawCall || uint64(len(lines)) < end {
		t.Fatalf("%d lines for %d events; the call made while down logged: %v", len(lines), end, sawCall)
	}
	if out := logs.String(); strings.Contains(out, "history broken") || strings.Contains(out, "level=ERROR") {
		t.Fatalf("the consumer complained:\n%s", out)
	}
}

// A subject whose history skips a seq is logged as broken, and its events
// are kept all the same: the audit log records what the stream holds.
func TestBrokenHistoryIsReported(t *testing.T) {
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv.Connect(t))
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "CEC_EVENTS", Subjects: []string{"cec.evt.>"}}); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{1, 2, 4} { // seq 3 never stored
		r := schematest.CallsRecord("acme", 1001, seq, fmt.Sprintf("c-%d", seq))
		if _, err := js.Publish(t.Context(), r.Subject, r.Body); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "audit.ndjson")
	var logs testbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{Server: srv.URL(), Stream: "CEC_EVENTS", Durable: "audit-broken", Filter: "cec.evt.>", Log: path},
			slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	testwait.For(t, 20*time.Second, "the three events logged", func() bool { return len(readLines(t, path)) == 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var broken []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "history broken") {
			broken = append(broken, l)
		}
	}
	if len(broken) != 1 || !strings.Contains(broken[0], "seq=4") || !strings.Contains(broken[0], "after_seq=2") {
		t.Fatalf("want one broken-history warning at seq 4 after 2, got %q", broken)
	}
}
