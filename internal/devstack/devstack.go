package devstack

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
)

// Tenant is the tenant the stack's bridge polls.
const Tenant = "dev"

// Stack is a running dev stack.
type Stack struct {
	NATS *natstest.Server
	Sim  *cecsim.Sim
}

// Start runs a server, a simulator of simCfg and a bridge with lookups,
// and stops them when the test ends.
func Start(t testing.TB, simCfg cecsim.Config) *Stack {
	t.Helper()
	srv := natstest.RunServer(t)
	sim := StartSim(t, simCfg)
	nc := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Serve(ctx, BridgeConfig(Tenant, srv.URL(), sim.URL()), nc, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("devstack: bridge: %v", err)
		}
	})
	return &Stack{NATS: srv, Sim: sim}
}

// StartSim starts a simulator of cfg, with session timers shortened for
// tests, and closes it when the test ends.
func StartSim(t testing.TB, cfg cecsim.Config) *cecsim.Sim {
	t.Helper()
	cfg.LongPollHold, cfg.GUIDInterval, cfg.GUIDTimeout, cfg.NoPollTimeout =
		100*time.Millisecond, 500*time.Millisecond, 2*time.Second, 10*time.Second
	return cecsimtest.Start(t, cfg)
}

// BridgeConfig is the configuration of a bridge polling one tenant of a
// simulator, with intervals short enough for tests.
func BridgeConfig(tenant, natsURL, simURL string) configs.Bridge {
	return configs.WithDefaults(configs.Bridge{
		NATS: configs.NATS{URLs: []string{natsURL}, ReconnectWait: 50 * time.Millisecond},
		Tenants: []configs.Tenant{{
			Name: tenant, FabricURL: simURL, GatewayURL: simURL,
			AppKey: "app-key", AppSecret: "app-secret", Timeout: 2 * time.Second,
			Monitors: []configs.Monitor{{AgentID: 1001, Password: "agent-pass"}},
			Intervals: configs.Intervals{
				Calls: 50 * time.Millisecond, Idle: 200 * time.Millisecond,
				Roster: 100 * time.Millisecond, Phones: 100 * time.Millisecond, Heartbeat: 500 * time.Millisecond,
			},
		}},
	})
}

// String returns everything written so far.
