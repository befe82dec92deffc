package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// TestMain lets a test start this very binary as the cecbridge program
// (CECBRIDGE_AS_MAIN=1), so the SIGKILL test kills a real process without
// a separate build step.
func TestMain(m *testing.M) {
	if os.Getenv("CECBRIDGE_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// Killing the bridge with SIGKILL at arbitrary moments while changes flow,
// and starting it again each time, leaves a history with no duplicate, no
// hole, and a final state equal to the simulator's truth.
func TestSIGKILLAndRestartLoseAndDuplicateNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	srv := natstest.RunServer(t)
	sim := cecsimtest.Start(t, cecsim.Config{Agents: 20, LongPollHold: 100 * time.Millisecond, NoPollTimeout: 30 * time.Second})

	cfgFile := filepath.Join(t.TempDir(), "bridge.yaml")
	cfg := fmt.Sprintf(`
nats:
  urls: [%q]
  reconnect_wait: 100ms
log:
  level: warn
  format: json
lease:
  ttl: 2s       # a killed holder's lease lapses quickly
tenants:
  - name: kill
    fabric_url: %q
    gateway_url: %q
    app_key: app-key
    app_secret: app-secret
    request_timeout: 2s
    monitors:
      - agent_id: 1001
        password: agent-pass
    intervals:
      calls: 30ms
      idle: 100ms
      roster: 100ms
      phones: 100ms
      heartbeat: 200ms
`, srv.URL(), sim.URL(), sim.URL())
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "run", "--config", cfgFile)
		cmd.Env = append(os.Environ(), "CECBRIDGE_AS_MAIN=1")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	// Changes flow all the time: calls start and end on random agents.
	ctx, stopChanges := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(7, 7))
		agents := sim.Agents()
		for ctx.Err() == nil {
			w := agents[rng.IntN(len(agents))]
			if calls := sim.AgentCalls(w); len(calls) > 0 && rng.IntN(2) == 0 {
				_ = sim.EndCall(w, calls[0])
			} else {
				_, _ = sim.StartCall(w)
			}
			select {
			case <-ctx.Done():
			case <-time.After(15 * time.Millisecond):
			}
		}
	})

	nc := srv.Connect(t)
	js := natstest.JetStream(t, nc)
	count := func() uint64 {
		s, err := js.Stream(t.Context(), schemas.EventsStream)
		if err != nil {
			return 0
		}
		info, err := s.Info(t.Context())
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 3 {
		cmd := start()
		floor := count()
		testwait.Until(t, fmt.Sprintf("round %d: events flowing", round), func() bool { return count() > floor+20 })
		time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond) // an arbitrary moment, not a synchronisation
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	stopChanges()
	wg.Wait()

	// A last bridge catches up and stops cleanly on SIGTERM.
	cmd := start()
	want := map[int][]string{}
	for _, w := range sim.Agents() {
		want[w] = sim.AgentCalls(w)
	}
	testwait.Until(t, "the stream to match the simulator", func() bool {
		got := lastCalls(t, js)
		for w, ids := range want {
			if !slices.Equal(got[w], ids) {
				return false
			}
		}
		return true
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("bridge after SIGTERM: %v", err)
	}
	checkStream(t, js)
}

// readAll returns every event in CEC_EVENTS in stream order.
func readAll(t *testing.T, js jetstream.JetStream) []jetstream.Msg {
	t.Helper()
	s, err := js.Stream(t.Context(), schemas.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(t.Context(), schemas.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for uint64(len(out)) < info.State.Msgs {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, m)
			n++
		}
		if n == 0 {
			t.Fatalf("stream read stalled at %d of %d", len(out), info.State.Msgs)
		}
	}
	return out
}

func lastCalls(t *testing.T, js jetstream.JetStream) map[int][]string {
	out := map[int][]string{}
	for _, m := range readAll(t, js) {
		ps, err := schemas.ParseSubject(m.Subject())
		if err != nil || ps.Aspect != "calls" {
			continue
		}
		var ev schemas.Event
		var ch schemas.Change[schemas.AgentCalls]
		if json.Unmarshal(m.Data(), &ev) != nil || json.Unmarshal(ev.Data, &ch) != nil {
			t.Fatalf("undecodable event on %s", m.Subject())
		}
		if ch.After != nil {
			out[ps.WorkNo] = ch.After.CallIDs
		}
	}
	return out
}

// checkStream checks every stored event: schema-valid, no ID twice, per
// subject seq from 1 without holes, prev_id chained.
func checkStream(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ids := map[string]bool{}
	last := map[string]schemas.Event{}
	seqs := map[string]uint64{}
	for _, m := range readAll(t, js) {
		schematest.ValidateEvent(t, m.Data())
		var ev schemas.Event
		_ = json.Unmarshal(m.Data(), &ev)
		if ids[ev.ID] {
			t.Errorf("duplicate event %s on %s", ev.ID, m.Subject())
		}
		ids[ev.ID] = true
		var d struct {
			Seq    uint64 `json:"seq"`
			PrevID string `json:"prev_id"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		if d.Seq != seqs[m.Subject()]+1 {
			t.Errorf("%s: seq %d after %d", m.Subject(), d.Seq, seqs[m.Subject()])
		}
		if p, ok := last[m.Subject()]; ok && d.PrevID != p.ID {
			t.Errorf("%s: broken prev_id chain at seq %d", m.Subject(), d.Seq)
		}
		seqs[m.Subject()], last[m.Subject()] = d.Seq, ev
	}
}
