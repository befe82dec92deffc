package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// holders counts the tenants each instance holds, from the lease keys.
func holders(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	out := map[string]int{}
	kv, err := js.KeyValue(t.Context(), "cecbridge_leases")
	if err != nil {
		return out
	}
	lister, err := kv.ListKeysFiltered(t.Context(), "tenant.*")
	if err != nil {
		return out
	}
	defer func() { _ = lister.Stop() }()
	for key := range lister.Keys() {
		if e, err := kv.Get(t.Context(), key); err == nil {
			out[string(e.Value())]++
		}
	}
	return out
}

func spread(want ...int) func(map[string]int) bool {
	return func(h map[string]int) bool {
		if len(h) != len(want) {
			return false
		}
		for _, n := range h {
			if n != want[0] {
				return false
			}
		}
		return true
	}
}

// Three instances share twelve tenants four each; when one stops the
// other two take its tenants (six each) within a lease TTL or so; when it
// comes back the tenants spread four each again; when it dies (no release)
// the other two have its tenants within a TTL and a few seconds. No tenant is polled by
// two instances at any time: no monitoring agent was ever forced out of a
// session another instance held, and in every tenant's history one term
// ends before the next begins.
func TestTenantsSpreadFairlyAndMoveCleanly(t *testing.T) {
	srv := natstest.RunServer(t)
	sim, err := cecsim.New(cecsim.Config{Agents: 16, LongPollHold: 100 * time.Millisecond, NoPollTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	var tenants []configs.Tenant
	for i := range 12 {
		tc := tenantCfg(fmt.Sprintf("t%02d", i), sim.URL(), "app-key", "app-secret", "agent-pass")
		tc.Monitors[0].AgentID = 1001 + i // each tenant its own monitoring session
		tc.Intervals = configs.Intervals{Calls: 200 * time.Millisecond, Idle: time.Second, Roster: time.Second, Phones: time.Second, Heartbeat: time.Second}
		tenants = append(tenants, tc)
	}
	base := configs.WithDefaults(configs.Bridge{
		NATS:    configs.NATS{URLs: []string{srv.URL()}, ReconnectWait: 50 * time.Millisecond},
		Lookup:  configs.Lookup{Disabled: true},
		Lease:   configs.Lease{TTL: 2 * time.Second},
		Tenants: tenants,
	})
	type instance struct {
		nc   *nats.Conn
		stop func()
	}
	start := func(name string) *instance {
		cfg := base
		cfg.Instance = name
		nc := srv.Connect(t, nats.ReconnectBufSize(-1))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- app.Serve(ctx, cfg, nc, slog.New(slog.DiscardHandler)) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("instance %s: %v", name, err)
				}
			})
		}
		t.Cleanup(stop)
		return &instance{nc: nc, stop: stop}
	}
	js := natstest.JetStream(t, srv.Connect(t))
	var last map[string]int
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tenants held at the end: %v", last)
		}
	})
	wait := func(d time.Duration, what string, cond func(map[string]int) bool) {
		t.Helper()
		testwait.For(t, d, what, func() bool { last = holders(t, js); return cond(last) })
	}

	start("a")
	start("b")
	c := start("c")
	wait(30*time.Second, "4/4/4", spread(4, 4, 4))

	c.stop() // cleanly: its leases are released, its presence withdrawn
	wait(base.Lease.TTL+5*time.Second, "6/6", spread(6, 6))

	c = start("c")
	wait(30*time.Second, "4/4/4 again", spread(4, 4, 4))

	// c dies: its connection goes first, so it releases nothing; its
	// leases and its presence expire with the TTL.
	c.nc.Close()
	c.stop()
	wait(base.Lease.TTL+5*time.Second, "6/6 after a crash", spread(6, 6))

	if n := sim.Counters()["forcelogin"]; n != 0 {
		t.Fatalf("%d forcelogins: a tenant moved while its previous holder was still signed in", n)
	}
	checkTermsDoNotOverlap(t, js)
}

// checkTermsDoNotOverlap reads the events stream: per tenant, the terms
// (from the Nats-Msg-Id suffix) must follow one another, never
// interleave.
func checkTermsDoNotOverlap(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	s, err := js.Stream(t.Context(), "CEC_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	type termSpan struct{ first, last uint64 }
	spans := map[string]map[string]*termSpan{} // tenant -> term -> span of stream seqs
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			continue
		}
		tenant := strings.Split(m.Subject, ".")[2]
		id := m.Header.Get(jetstream.MsgIDHeader)
		term := id[strings.LastIndexByte(id, '.')+1:]
		if spans[tenant] == nil {
			spans[tenant] = map[string]*termSpan{}
		}
		sp := spans[tenant][term]
		if sp == nil {
			sp = &termSpan{first: seq}
			spans[tenant][term] = sp
		}
		sp.last = seq
	}
	moved := 0
	for tenant, terms := range spans {
		moved += len(terms) - 1
		for t1, a := range terms {
			for t2, b := range terms {
				if t1 < t2 && a.first < b.last && b.first < a.last {
					t.Errorf("tenant %s: terms %s (%d-%d) and %s (%d-%d) wrote at the same time", tenant, t1, a.first, a.last, t2, b.first, b.last)
				}
			}
		}
	}
	if moved == 0 {
		t.Fatal("no tenant changed hands: the test proved nothing")
	}
}
