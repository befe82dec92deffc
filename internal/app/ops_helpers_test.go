package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// Helpers of the operational scenarios: a simulator, a running bridge,
// its HTTP endpoints.

func debugLogger(buf *testbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// opsSim starts a simulator with fast timers and no workload.
func opsSim(t *testing.T, cfg cecsim.Config) *cecsim.Sim {
	t.Helper()
	if cfg.LongPollHold == 0 {
		cfg.LongPollHold = 100 * time.Millisecond
	}
	if cfg.NoPollTimeout == 0 {
		cfg.NoPollTimeout = 10 * time.Second
	}
	sim, err := cecsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

func startSim(t *testing.T, sim *cecsim.Sim) {
	t.Helper()
	if err := sim.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
}

// tenantCfg is a tenant with fast intervals against base.
func tenantCfg(name, base, appKey, appSecret, agentPass string) configs.Tenant {
	return configs.Tenant{
		Name: name, FabricURL: base, GatewayURL: base,
		AppKey: appKey, AppSecret: configs.Secret(appSecret),
		Timeout:  2 * time.Second,
		Monitors: []configs.Monitor{{AgentID: 1001, Password: configs.Secret(agentPass)}},
		Intervals: configs.Intervals{
			Calls: 50 * time.Millisecond, Idle: 200 * time.Millisecond,
			Roster: 100 * time.Millisecond, Phones: 100 * time.Millisecond, Heartbeat: 300 * time.Millisecond,
		},
	}
}

// runningBridge is a bridge built with app.New and run with Bridge.Serve.
type runningBridge struct {
	b    *app.Bridge
	stop func()
}

func runBridge(t *testing.T, cfg configs.Bridge, nc *nats.Conn, log *slog.Logger) *runningBridge {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b, err := app.New(cfg, nc, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("bridge: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("bridge did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return &runningBridge{b: b, stop: stop}
}

// httpAddr waits for the bridge's metrics listener.
func (r *runningBridge) httpBase(t *testing.T) string {
	t.Helper()
	testwait.For(t, 10*time.Second, "the HTTP listener", func() bool { return r.b.HTTPAddr() != "" })
	return "http://" + r.b.HTTPAddr()
}

func httpGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, body
}
