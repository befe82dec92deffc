package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ChaosOptions are the chaos drill's settings (the chaos flags).
type ChaosOptions struct {
	Kills         int           `json:"kills"`
	KillGap       time.Duration `json:"mean_gap_between_faults"`
	MaxDowntime   time.Duration `json:"max_downtime"`
	Outage        time.Duration `json:"nats_outage"`
	OutageKill    bool          `json:"kill_during_outage"`
	KillOutage    time.Duration `json:"nats_outage_with_kill"`
	Pause         bool          `json:"pause_holder"`
	DiskFull      time.Duration `json:"disk_full"`
	LeaseTTL      time.Duration `json:"lease_ttl"`
	BufferEvents  int           `json:"buffer_events"`
	SpoolMaxBytes int64         `json:"spool_max_bytes"`
	BridgeBin     string        `json:"bridge_bin,omitempty"`
	ConfigExtra   string        `json:"bridge_config,omitempty"`
	KeepDir       string        `json:"keep_dir,omitempty"`
}

func chaosFlags(fs *flag.FlagSet, c *ChaosOptions) {
	fs.IntVar(&c.Kills, "kills", 20, "chaos: SIGKILLs of the lease holder, one of them during the NATS outage")
	fs.DurationVar(&c.KillGap, "kill-gap", 8*time.Second, "chaos: mean time between faults (each gap drawn from 0.5x to 1.5x)")
	fs.DurationVar(&c.MaxDowntime, "max-downtime", 2*time.Second, "chaos: a killed bridge restarts after a random downtime of up to this")
	fs.DurationVar(&c.Outage, "outage", 60*time.Second, "chaos: NATS outage (0: none)")
	fs.BoolVar(&c.OutageKill, "outage-kill", true, "chaos: one of the kills falls in a NATS outage of its own (--kill-outage long), with the full disk")
	fs.DurationVar(&c.KillOutage, "kill-outage", 15*time.Second, "chaos: the NATS outage in which the holder is killed")
	fs.BoolVar(&c.Pause, "pause", true, "chaos: SIGSTOP the holder once for longer than the lease TTL, then SIGCONT it")
	fs.DurationVar(&c.DiskFull, "disk-full", 10*time.Second, "chaos: the holder's disk is full this long during the outage (0: never; Linux only)")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", 4*time.Second, "chaos: the bridges' lease.ttl")
	fs.IntVar(&c.BufferEvents, "buffer-events", 50, "chaos: the bridges' publisher.buffer_events (small, so that an outage reaches the spool)")
	fs.Int64Var(&c.SpoolMaxBytes, "spool-max-bytes", 8<<20, "chaos: the bridges' publisher.spool_max_bytes")
	fs.StringVar(&c.BridgeBin, "bridge-bin", "", "chaos: the cecbridge binary (default: go build ./cmd/cecbridge into a temporary directory)")
	fs.StringVar(&c.ConfigExtra, "bridge-config", "", "chaos: YAML merged into each bridge's configuration; {name} becomes the instance's name")
	fs.StringVar(&c.KeepDir, "keep", "", "chaos: keep configurations, logs, spools and the NATS store in this directory")
}

// writeConfig writes an instance's configuration: leases on with the
// drill's TTL, a small memory buffer and a spool of its own, JSON logs
// (the drill reads them), and the simulator through the instance's front.
// --bridge-config is merged over it.
func (d *drill) writeConfig(s *slot) error {
	o, c := d.o, d.co
	tenant := map[string]any{
		"name": chaosTenant, "fabric_url": s.front.url, "gateway_url": s.front.url,
		"app_key": "app-key", "app_secret": "app-secret", "request_timeout": "2s",
		"concurrency": o.Concurrency,
		"monitors":    []any{map[string]any{"agent_id": firstWorkNo + bridgeMonitor, "password": "agent-pass"}},
		"intervals": map[string]any{
			"calls": o.Interval.String(), "idle": o.Idle.String(), "active_window": o.ActiveWindow.String(),
			"roster": o.Roster.String(), "phones": o.Phones.String(), "heartbeat": "2s",
		},
	}
	if o.Budget > 0 {
		tenant["budget"] = o.Budget
	}
	cfg := map[string]any{
		// A stable name per slot: a restarted instance resumes its lease.
		"instance": s.instanceName(),
		"nats":     map[string]any{"urls": []any{d.nats.url()}, "reconnect_wait": "100ms", "name": s.instanceName()},
		"log":      map[string]any{"level": "info", "format": "json"},
		"lease":    map[string]any{"ttl": c.LeaseTTL.String()},
		"publisher": map[string]any{
			"buffer_events": c.BufferEvents, "spool_dir": s.spoolDir, "spool_max_bytes": c.SpoolMaxBytes, "flush_timeout": "5s",
		},
		"tenants": []any{tenant},
	}
	if c.ConfigExtra != "" {
		var extra map[string]any
		if err := yaml.Unmarshal([]byte(strings.ReplaceAll(c.ConfigExtra, "{name}", s.instanceName())), &extra); err != nil {
			return fmt.Errorf("--bridge-config: %w", err)
		}
		mergeMaps(cfg, extra)
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("bridge config: %w", err)
	}
	if err := os.WriteFile(s.cfgPath, b, 0o600); err != nil {
		return fmt.Errorf("bridge config: %w", err)
	}
	return nil
}

// mergeMaps merges src into dst: maps key by key, anything else replaced.
func mergeMaps(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeMaps(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// The chaos presets. The workload is lively for its size: calls of 10 to
// 20 s on a few hundred agents, softphones and phones changing every few
// seconds; intervals short, so that a change lasting two of them is a
// matter of seconds. lease.ttl is 4 s, so that a takeover costs seconds
// rather than the default 15; downtimes are mostly shorter than it, which
// is where a restart that waits out its own old lease shows.
var (
	chaosPreset = map[string]string{
		"agents": "300", "calls-per-hour": "120", "mean-call": "20s",
		"softphone-per-hour": "720", "phone-flaps-per-hour": "720",
		"interval": "1s", "idle": "3s", "roster": "2s", "phones": "2s", "concurrency": "16",
		"kills": "20", "kill-gap": "8s", "max-downtime": "2s", "outage": "60s", "kill-outage": "15s", "disk-full": "5s", "lease-ttl": "4s",
	}
	chaosShortPreset = map[string]string{
		"agents": "100", "calls-per-hour": "240", "mean-call": "10s",
		"softphone-per-hour": "720", "phone-flaps-per-hour": "720",
		"interval": "1s", "idle": "3s", "roster": "2s", "phones": "2s", "concurrency": "8",
		"kills": "3", "kill-gap": "3s", "max-downtime": "1s", "outage": "15s", "kill-outage": "10s", "disk-full": "3s", "lease-ttl": "4s",
	}
)
