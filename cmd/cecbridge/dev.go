package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// devTenant is the tenant name dev mode uses.
const devTenant = "dev"

// runDev is "cecbridge dev": an embedded NATS server with JetStream, the
// simulated CEC with a lively workload and the bridge polling it, all in
// this process, nothing to set up.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", "", "JetStream store directory (default: a new temporary directory)")
	port := fs.Int("nats-port", 4222, "NATS client port on 127.0.0.1 (0 = any free port)")
	httpPort := fs.Int("http-port", 9090, "port on 127.0.0.1 for /metrics, /healthz and /readyz (0 = any free port)")
	agents := fs.Int("agents", 200, "simulated agents")
	seed := fs.Int64("seed", 1, "workload seed")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	log := newLogger(stderr, *level, *format)

	dir := *store
	if dir == "" {
		tmp, err := os.MkdirTemp("", "cecbridge-dev-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(tmp) }() // a temporary directory: best effort
		dir = tmp
	}
	ns, err := startDevNATS(dir, *port, log)
	if err != nil {
		return err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()

	sim, err := cecsim.New(cecsim.Config{
		Seed:   *seed,
		Agents: *agents,
		Workload: cecsim.Workload{
			Enabled:           true,
			SignedInShare:     0.6,
			CallsPerAgentHour: 60,
			MeanCallDuration:  25 * time.Second,
		},
		Logger: log,
	})
	if err != nil {
		return err
	}
	// The simulator outlives the bridge so that the gateway sessions can sign
	// out during shutdown; the deferred Close stops it.
	if err := sim.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	defer func() { _ = sim.Close() }()
	log.Info("simulated CEC up", "url", sim.URL(), "agents", *agents)

	cfg := devConfig(sim.URL(), ns.ClientURL())
	httpAddr, err := loopbackAddr(*httpPort, log)
	if err != nil {
		return err
	}
	cfg.HTTP.Listen = httpAddr
	nc, err := app.ConnectNATS(cfg.NATS, log)
	if err != nil {
		return err
	}
	defer app.Drain(nc, log)
	url := ns.ClientURL()
	log.Info("NATS with JetStream up", "url", url, "store", dir)
	fmt.Fprintf(stdout, `
cecbridge dev is running. From another terminal:
  nats sub --server %[1]s 'cec.evt.%[2]s.>'
  go run ./cmd/cecbridge tail --server %[1]s
  go run ./cmd/cecbridge lookup agent-calls 1001 --server %[1]s --tenant %[2]s
  curl http://%[3]s/metrics     (and /healthz, /readyz)
Press Ctrl-C to stop.

`, url, devTenant, httpAddr)
	counter := &eventCounter{counts: map[string]int{}}
	return app.Serve(ctx, cfg, nc, log, func(ctx context.Context) error { return counter.run(ctx, nc, log) })
}

// devConfig is the bridge configuration dev mode runs with: one tenant on
// the simulator, short intervals so changes show up quickly.
func devConfig(simURL, natsURL string) configs.Bridge {
	cfg := configs.Bridge{
		NATS: configs.NATS{URLs: []string{natsURL}},
		Log:  configs.Log{Level: "info", Format: "text"},
		Tenants: []configs.Tenant{{
			Name:       devTenant,
			FabricURL:  simURL,
			GatewayURL: simURL,
			AppKey:     "app-key",
			AppSecret:  "app-secret",
			Monitors:   []configs.Monitor{{AgentID: 1001, Password: "agent-pass"}},
			Intervals: configs.Intervals{
				Calls: time.Second, Idle: 5 * time.Second, Roster: 10 * time.Second,
				Phones: 10 * time.Second, Heartbeat: 10 * time.Second,
			},
			// The simulator's CC-CMS, so that dev shows the sweep: every
			// agent every second, agent.calls_v2 and agent.state.
			CMS: &configs.CMS{URL: simURL, AK: "cms-ak", SK: "cms-sk", CCID: 1, VDNs: []configs.CMSVDN{{VDN: 1}}},
		}},
	}
	cfg = configs.WithDefaults(cfg)
	return cfg
}

// loopbackAddr is 127.0.0.1 with port if it is free, else with a free one.
func loopbackAddr(port int, log *slog.Logger) (string, error) {
	if port != 0 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if l, err := net.Listen("tcp", addr); err == nil {
			_ = l.Close()
			return addr, nil
		}
		log.Warn("HTTP port busy; using a free one", "port", port)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("dev: no free port for HTTP: %w", err)
	}
	defer func() { _ = l.Close() }() // only asked for a free port
	return l.Addr().String(), nil
}

// startDevNATS starts an embedded NATS server with JetStream on loopback,
// on the given port if it is free, else on any free port.
func startDevNATS(dir string, port int, log *slog.Logger) (*server.Server, error) {
	if port != 0 {
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
			log.Warn("NATS port busy; using a free one", "port", port)
			port = -1
		} else {
			_ = l.Close()
		}
	} else {
		port = -1
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "cecbridge-dev",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats did not start")
	}
	return ns, nil
}

// eventCounter shows a live count of events by type in dev mode.
type eventCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *eventCounter) run(ctx context.Context, nc *nats.Conn, log *slog.Logger) error {
	sub, err := nc.Subscribe(schemas.AllEvents, func(m *nats.Msg) {
		ps, err := schemas.ParseSubject(m.Subject)
		if err != nil {
			return
		}
		key := ps.Entity + "." + ps.Aspect
		c.mu.Lock()
		c.counts[key]++
		c.mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			c.mu.Lock()
			keys := slices.Sorted(maps.Keys(c.counts))
			var parts []string
			for _, k := range keys {
				parts = append(parts, k+"="+strconv.Itoa(c.counts[k]))
			}
			c.mu.Unlock()
			if len(parts) > 0 {
				log.Info("events so far", "by_type", strings.Join(parts, " "))
			}
		}
	}
}
