package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/internal/finalstate"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// The bridge on a three-node cluster, with R3 streams and lease bucket
// placed by tag, loses, doubles and forks nothing while changes flow and
// first the events stream's leader is killed, then the server the bridge
// is connected to: the history keeps every rule and ends in the
// simulator's world.
func TestClusterLosesNothingWhenServersDie(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster")
	}
	c := natstest.RunCluster(t, natstest.WithOptions(func(o *server.Options) { o.Tags.Add("cecbridge") }))
	sim := opsSim(t, cecsim.Config{Agents: 24})
	startSim(t, sim)
	cfg := configs.WithDefaults(configs.Bridge{
		NATS: configs.NATS{URLs: c.URLs(), ReconnectWait: 50 * time.Millisecond},
		Streams: configs.Streams{Replicas: 3,
			Placement: configs.Placement{Tags: []string{"cecbridge"}}},
		Lease:   configs.Lease{TTL: 2 * time.Second},
		HTTP:    configs.HTTP{Listen: "127.0.0.1:0"},
		Tenants: []configs.Tenant{tenantCfg(tenant, sim.URL(), "app-key", "app-secret", "agent-pass")},
	})
	log := slog.New(slog.DiscardHandler)
	bnc, err := app.ConnectNATS(cfg.NATS, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bnc.Close)
	bridge := runBridge(t, cfg, bnc, log)

	js := natstest.JetStream(t, c.Connect(t))
	events := readStream(t, js, jetstream.PullExpiry(time.Second))
	e := &env{sim: sim, events: events}
	e.waitSnapshots(t)

	// Changes flow all the time: calls start and end, softphones are
	// rebound, phones suspended and registered again.
	changes, stopChanges := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { drive(changes, sim) })
	defer func() { stopChanges(); wg.Wait() }()

	t0 := time.Now()
	// progress waits until 100 events were stored after floor, a stream
	// sequence taken before a server was killed.
	lastSeq := func() uint64 {
		t.Helper()
		s, err := js.Stream(t.Context(), "CEC_EVENTS")
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.LastSeq
	}
	progress := func(what string, floor uint64) {
		t.Helper()
		testwait.Until(t, what, func() bool {
			// A short deadline: during an election an info request may go
			// unanswered, and the next attempt reaches the new leader.
			ctx, cancel := context.WithTimeout(t.Context(), 250*time.Millisecond)
			defer cancel()
			s, err := js.Stream(ctx, "CEC_EVENTS")
			return err == nil && s.CachedInfo().State.LastSeq >= floor+100
		})
		t.Logf("%6.2fs %s", time.Since(t0).Seconds(), what)
	}
	caughtUp := func() {
		t.Helper()
		defer func() { t.Logf("%6.2fs caught up", time.Since(t0).Seconds()) }()
		wctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		for _, s := range []string{"CEC_EVENTS", "CEC_STATE", "KV_" + cfg.Lease.Bucket} {
			if err := c.WaitStreamCurrent(wctx, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	progress("events flowing", 0)
	// /readyz and the metrics show every replica of both streams current,
	// then the killed node's replica offline or behind, then current again.
	app.SetStreamCheckEvery(t, 100*time.Millisecond)
	base := bridge.httpBase(t)
	allCurrent := func(what string) {
		t.Helper()
		waitReadyz(t, base, what, func(code int, r readyz) bool {
			for _, s := range []string{"CEC_EVENTS", "CEC_STATE"} {
				if h := r.stream(s); code != http.StatusOK || h.Replicas != 3 || h.Current != 3 || h.Leader == "" {
					return false
				}
			}
			return true
		})
	}
	allCurrent("every replica current at the start")

	lctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	leader, err := c.StreamLeader(lctx, "CEC_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	floor := lastSeq()
	c.Kill(leader)
	progress("events with the CEC_EVENTS leader killed", floor)
	r := waitReadyz(t, base, "a replica of CEC_EVENTS not current", func(_ int, r readyz) bool {
		h := r.stream("CEC_EVENTS")
		return h.Current == 2 && h.Lagging+h.Offline == 1
	})
	if h := r.stream("CEC_EVENTS"); h.Leader == c.Name(leader) {
		t.Errorf("/readyz names the killed node as the leader: %+v", h)
	}
	if v, ok := sample(scrapeMetrics(t, base), "cecbridge_stream_replicas", map[string]string{"stream": "CEC_EVENTS", "state": "current"}); !ok || v != 2 {
		t.Errorf("cecbridge_stream_replicas{stream=CEC_EVENTS,state=current} = %v (%v) with a node down", v, ok)
	}
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	caughtUp()
	allCurrent("every replica current after the restart")

	connected := c.Index(bnc.ConnectedServerName())
	if connected < 0 {
		t.Fatalf("the bridge is connected to %q, not a node of the cluster", bnc.ConnectedServerName())
	}
	floor = lastSeq()
	c.Kill(connected)
	progress("events with the bridge's server killed", floor)
	if now := bnc.ConnectedServerName(); now == c.Name(connected) {
		t.Fatalf("the bridge is still connected to the killed node %s", now)
	}
	if err := c.Restart(connected); err != nil {
		t.Fatal(err)
	}
	caughtUp()

	stopChanges()
	wg.Wait()
	want := finalstate.OfSim(sim)
	var diff []string
	t.Cleanup(func() {
		if t.Failed() && len(diff) > 0 {
			t.Logf("the stream's final state differs from the simulator's: %q", diff[:min(len(diff), 20)])
		}
	})
	seen := -1
	testwait.Until(t, "the stream to end in the simulator's world", func() bool {
		all := events.all()
		if len(all) == seen {
			return false // nothing new since the last comparison
		}
		seen = len(all)
		got, err := finalstate.OfHistory(tenant, finalMsgs(all))
		if err != nil {
			t.Fatal(err)
		}
		diff = finalstate.Diff(want, got)
		return len(diff) == 0
	})
	fams := scrapeMetrics(t, base)
	t.Logf("%6.2fs final state reached", time.Since(t0).Seconds())
	bridge.stop()

	h := events.checkHistory(t)
	outcomes := map[string]float64{}
	for _, o := range []string{"ok", "duplicate", "retry", "conflict", "error"} {
		outcomes[o], _ = sample(fams, "cecbridge_publish_attempts_total", map[string]string{"outcome": o})
	}
	t.Logf("%d events on %d subjects; killed n%d (CEC_EVENTS leader), then n%d (the bridge's server); publish attempts %v",
		h.Events(), h.Subjects(), leader+1, connected+1, outcomes)

	// The streams and the lease bucket are replicated as configured.
	for _, name := range []string{"CEC_EVENTS", "CEC_STATE", "KV_" + cfg.Lease.Bucket} {
		s, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		sc := s.CachedInfo().Config
		if sc.Replicas != 3 || sc.Placement == nil || !slices.Equal(sc.Placement.Tags, []string{"cecbridge"}) {
			t.Errorf("%s: replicas %d, placement %+v; want 3 on tag cecbridge", name, sc.Replicas, sc.Placement)
		}
	}
}

func finalMsgs(events []stored) []finalstate.Msg {
	out := make([]finalstate.Msg, len(events))
	for i, s := range events {
		out[i] = finalstate.Msg{StreamSeq: s.seq, Subject: s.subject, Data: s.body}
	}
	return out
}

// drive changes the simulated world every few milliseconds until ctx ends:
// mostly calls starting and ending, some softphone rebinds and phone
// flaps. Refused changes (an agent at its call limit) are simply skipped.
func drive(ctx context.Context, sim *cecsim.Sim) {
	rng := rand.New(rand.NewPCG(12, 12))
	agents := sim.Agents()
	phones := sim.Phones()
	for n := 0; ctx.Err() == nil; n++ {
		w := agents[rng.IntN(len(agents))]
		switch r := rng.IntN(100); {
		case r < 50:
			_, _ = sim.StartCall(w)
		case r < 85:
			if calls := sim.AgentCalls(w); len(calls) > 0 {
				_ = sim.EndCall(w, calls[rng.IntN(len(calls))])
			}
		case r < 92:
			_ = sim.SetSoftphone(w, fmt.Sprintf("7777%04d", n%50), fmt.Sprintf("acct-%d", n%50))
		default:
			p := phones[rng.IntN(len(phones))]
			_ = sim.SetPhoneStatus(p.PhoneNum, rng.IntN(2))
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
}
