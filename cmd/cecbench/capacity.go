package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// capacityTenant is the tenant of the capacity phase; its own subjects keep
// its events apart from the detection phase's.
const capacityTenant = "capacity"

// capacityMonitor is the capacity bridge's monitoring agent (an offset from
// the first work number, like bridgeMonitor and bareMonitor).
const capacityMonitor = 2

// CapacityResult is the bridge's polling capacity: the same wiring as
// `cecbridge run`, with every agent due all the time, so the figure is
// how fast the bridge can poll rather than how fast its schedule asks it to.
type CapacityResult struct {
	Seconds float64 `json:"seconds"`
	Polls   int64   `json:"polls"`
	PerSec  float64 `json:"per_sec"`
	CPUSec  float64 `json:"cpu_seconds"`
}

// capacityPoll runs a bridge whose intervals are so short that every agent
// is always due, lets its first roster and snapshot pass go by, and counts
// the allcallinfoEx requests the simulator serves over d.
func capacityPoll(ctx context.Context, o Options, sim *cecsim.Sim, natsURL string, d time.Duration, progress io.Writer, log *slog.Logger) (CapacityResult, error) {
	cfg := bridgeConfig(o, sim.URL(), natsURL)
	t := &cfg.Tenants[0]
	t.Name = capacityTenant
	t.Budget = 0
	t.Monitors[0].AgentID = firstWorkNo + capacityMonitor
	t.Intervals = configs.Intervals{
		Calls: time.Millisecond, Idle: time.Millisecond, ActiveWindow: time.Hour,
		Roster: time.Hour, Phones: time.Hour, Heartbeat: time.Hour,
	}
	cfg.Lookup.Disabled = true
	cfg.HTTP.Listen = ""
	nc, err := app.ConnectNATS(cfg.NATS, log)
	if err != nil {
		return CapacityResult{}, fmt.Errorf("capacity nats: %w", err)
	}
	defer nc.Close()
	bctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Serve(bctx, cfg, nc, log) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			log.Warn("capacity bridge stopped with an error", "err", err)
		}
	}()

	// Warm-up: wait until the poll rate is steady (the first pass emits a
	// snapshot per agent), at most 10 s.
	warm := time.Now().Add(10 * time.Second)
	prev := sim.Counters()["allcallinfoEx"]
	for time.Now().Before(warm) {
		select {
		case <-ctx.Done():
			return CapacityResult{}, ctx.Err()
		case err := <-done:
			return CapacityResult{}, fmt.Errorf("capacity bridge stopped: %w", err)
		case <-time.After(time.Second):
		}
		cur := sim.Counters()["allcallinfoEx"]
		if cur-prev >= int64(o.Agents) { // a full pass per second or better
			break
		}
		prev = cur
	}
	fmt.Fprintf(progress, "capacity: every agent due, %d workers, %s\n", o.Concurrency, d)
	c0, cpu0, t0 := sim.Counters()["allcallinfoEx"], cpuSeconds(), time.Now()
	select {
	case <-ctx.Done():
		return CapacityResult{}, ctx.Err()
	case err := <-done:
		return CapacityResult{}, fmt.Errorf("capacity bridge stopped: %w", err)
	case <-time.After(d):
	}
	el := time.Since(t0).Seconds()
	r := CapacityResult{Seconds: el, Polls: sim.Counters()["allcallinfoEx"] - c0, CPUSec: cpuSeconds() - cpu0}
	r.PerSec = float64(r.Polls) / el
	return r, nil
}
