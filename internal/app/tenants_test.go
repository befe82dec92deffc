package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// Multiple tenants in one bridge.

// One bridge serves two tenants on two simulators with different
// credentials and intervals; each tenant's changes land under its own
// subjects and nowhere else.
func TestTwoTenantsOneBridge(t *testing.T) {
	srv := natstest.RunServer(t)
	north := opsSim(t, cecsim.Config{Agents: 3, AppKey: "north-key", AppSecret: "north-secret", AgentPassword: "north-pass"})
	south := opsSim(t, cecsim.Config{Agents: 4, FirstWorkNo: 2001, AppKey: "south-key", AppSecret: "south-secret", AgentPassword: "south-pass"})
	startSim(t, north)
	startSim(t, south)
	tn := tenantCfg("north", north.URL(), "north-key", "north-secret", "north-pass")
	ts := tenantCfg("south", south.URL(), "south-key", "south-secret", "south-pass")
	ts.Monitors[0].AgentID = 2001
	ts.Intervals = configs.Intervals{Calls: 80 * time.Millisecond, Idle: 300 * time.Millisecond,
		Roster: 150 * time.Millisecond, Phones: 250 * time.Millisecond, Heartbeat: 400 * time.Millisecond}
	cfg := configs.WithDefaults(configs.Bridge{
		NATS:    configs.NATS{URLs: []string{srv.URL()}, ReconnectWait: 50 * time.Millisecond},
		Tenants: []configs.Tenant{tn, ts},
	})
	nc := srv.Connect(t)
	js := natstest.JetStream(t, nc)
	runBridge(t, cfg, srv.Connect(t), slog.New(slog.DiscardHandler))

	// Both tenants' snapshots arrive, each under its own prefix.
	lastOn := func(subject string) (schemas.Event, bool) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, schemas.EventsStream)
		if err != nil {
			return schemas.Event{}, false
		}
		m, err := st.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			return schemas.Event{}, false
		}
		var ev schemas.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		return ev, true
	}
	for tenant, sim := range map[string]*cecsim.Sim{"north": north, "south": south} {
		testwait.For(t, 15*time.Second, tenant+" snapshots", func() bool {
			for _, w := range sim.Agents() {
				if _, ok := lastOn(schemas.AgentCallsSubject(tenant, w)); !ok {
					return false
				}
			}
			return true
		})
	}
	idN, err := north.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	idS, err := south.StartCall(2003)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tenant string
		workNo int
		id     string
	}{{"north", 1002, idN}, {"south", 2003, idS}} {
		testwait.For(t, 15*time.Second, c.tenant+" call event", func() bool {
			ev, ok := lastOn(schemas.AgentCallsSubject(c.tenant, c.workNo))
			return ok && strings.Contains(string(ev.Data), c.id)
		})
	}

	// Nothing crossed over: per-tenant subjects hold only their own agents.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, schemas.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("cec.evt.>"))
	if err != nil {
		t.Fatal(err)
	}
	perTenant := map[string]int{}
	for subject := range info.State.Subjects {
		ps, err := schemas.ParseSubject(subject)
		if err != nil {
			t.Fatalf("subject %s: %v", subject, err)
		}
		perTenant[ps.Tenant]++
		if ps.WorkNo != 0 {
			inNorth := ps.WorkNo >= 1001 && ps.WorkNo <= 1003
			inSouth := ps.WorkNo >= 2001 && ps.WorkNo <= 2004
			if (ps.Tenant == "north" && !inNorth) || (ps.Tenant == "south" && !inSouth) {
				t.Errorf("agent %d appears under tenant %s (%s)", ps.WorkNo, ps.Tenant, subject)
			}
		}
	}
	if len(perTenant) != 2 || perTenant["north"] == 0 || perTenant["south"] == 0 {
		t.Fatalf("subjects per tenant: %v", perTenant)
	}
	if _, ok := lastOn(schemas.BridgeSubject("south", schemas.BridgeHeartbeat)); !ok {
		testwait.For(t, 10*time.Second, "a south heartbeat", func() bool {
			_, ok := lastOn(schemas.BridgeSubject("south", schemas.BridgeHeartbeat))
			return ok
		})
	}
}
