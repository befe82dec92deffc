package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

const (
	benchTenant   = "bench"
	bridgeMonitor = 0 // offsets from the first work number
	bareMonitor   = 1
	firstWorkNo   = 1001
)

// simConfig is the simulator of a run: the seeded workload of the options.
func simConfig(o Options, log *slog.Logger) cecsim.Config {
	return cecsim.Config{
		Seed: o.Seed, Agents: o.Agents, FirstWorkNo: firstWorkNo,
		Workload: cecsim.Workload{
			Enabled: true, SignedInShare: o.SignedIn,
			CallsPerAgentHour: o.CallsPerHour, MeanCallDuration: o.MeanCall,
			SoftphoneChangesPerHour: o.SoftphonePerHour, PhoneFlapsPerHour: o.PhoneFlapsPerHour,
		},
		Logger: log,
	}
}

// bridgeConfig is the bridge configuration of a run, shaped like dev mode's.
func bridgeConfig(o Options, simURL, natsURL string) configs.Bridge {
	cfg := configs.Bridge{
		NATS: configs.NATS{URLs: []string{natsURL}, ReconnectWait: 100 * time.Millisecond, Name: "cecbench-bridge"},
		Log:  configs.Log{Level: "warn", Format: "text"},
		Tenants: []configs.Tenant{{
			Name: benchTenant, FabricURL: simURL, GatewayURL: simURL,
			AppKey: "app-key", AppSecret: "app-secret",
			Monitors:    []configs.Monitor{{AgentID: firstWorkNo + bridgeMonitor, Password: "agent-pass"}},
			Budget:      o.Budget,
			Concurrency: o.Concurrency,
			Intervals: configs.Intervals{
				Calls: o.Interval, Idle: o.Idle, ActiveWindow: o.ActiveWindow,
				Roster: o.Roster, Phones: o.Phones, Heartbeat: 2 * time.Second,
			},
		}},
	}
	cfg.Publisher.BufferEvents = o.BridgeBuffer // 0: the bridge's default
	return configs.WithDefaults(cfg)
}

// connect opens the bridge's connection (as `cecbridge run` opens it) and
// the harness's own, with a JetStream context on the latter. The caller
// closes both.
func connect(c configs.NATS, log *slog.Logger) (bnc, onc *nats.Conn, ojs jetstream.JetStream, err error) {
	if bnc, err = app.ConnectNATS(c, log); err != nil {
		return nil, nil, nil, fmt.Errorf("bridge nats: %w", err)
	}
	onc, err = nats.Connect(strings.Join(c.URLs, ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Name("cecbench"))
	if err != nil {
		bnc.Close()
		return nil, nil, nil, fmt.Errorf("bench nats: %w", err)
	}
	if ojs, err = jetstream.New(onc); err != nil {
		bnc.Close()
		onc.Close()
		return nil, nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return bnc, onc, ojs, nil
}

// startSim starts the simulator with the run's seeded workload; Close
// stops it.
func startSim(ctx context.Context, o Options, log *slog.Logger) (*cecsim.Sim, error) {
	sim, err := cecsim.New(simConfig(o, log))
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	if err := sim.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	return sim, nil
}
