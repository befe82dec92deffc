package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/probe"
)

// exitStatus ends the process with a status of its own (main prints
// nothing more): the probe's verdict.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// runProbe is "cecbridge probe --config FILE": a read-only run against a
// live tenant that reports what the vendor answers and what the bridge
// will do with it. Exit status 0: the configuration works; 2: it works
// with the suggested changes; 1: it cannot work.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "configuration file (YAML)")
	tenant := fs.String("tenant", "", "tenant to probe (needed when the file has several)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	capture := fs.String("capture", "", "write every request and answer, secrets removed and personal data pseudonymised, to this directory")
	slow := fs.Bool("slow", false, "also wait out a short token and watch 70s for a GUID rotation")
	scan := fs.Int("scan", 20, "agents to ask about calls, looking for one in a call")
	guidWatch := fs.Duration("guid-watch", 0, "keep polling this long after sign-in to see a GUID rotate")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *file == "" {
		fmt.Fprintln(stderr, "usage: cecbridge probe --config FILE [--tenant T] [--json] [--capture DIR] [--slow]")
		return errUsage
	}
	cfg, err := configs.LoadFile(*file)
	if err != nil {
		return err
	}
	tc, err := pickTenant(cfg, *tenant)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	p, err := probe.New(tc, probe.Options{Scan: *scan, Slow: *slow, GUIDWatch: *guidWatch, Progress: stderr, Logger: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "probing tenant %s read-only: signs in monitoring agent %d only, and signs it out at the end\n", tc.Name, tc.Monitors[0].AgentID)
	start := time.Now()
	report := p.Run(ctx)
	fmt.Fprintf(stderr, "probe finished in %s\n", time.Since(start).Round(time.Millisecond))
	if *capture != "" {
		if err := p.WriteCapture(*capture); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "capture written to %s (%d exchanges); replay it with: go run ./cmd/cecsim --replay %s\n",
			*capture, len(p.Exchanges()), *capture)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else if err := report.WriteTable(stdout); err != nil {
		return err
	}
	if code := report.ExitCode(); code != 0 {
		return exitStatus(code)
	}
	return nil
}

func pickTenant(cfg configs.Bridge, name string) (configs.Tenant, error) {
	var names []string
	for _, t := range cfg.Tenants {
		if t.Name == name || (name == "" && len(cfg.Tenants) == 1) {
			return t, nil
		}
		names = append(names, t.Name)
	}
	if name == "" {
		return configs.Tenant{}, fmt.Errorf("probe: the file has %d tenants; pick one with --tenant (%s)", len(names), strings.Join(names, ", "))
	}
	return configs.Tenant{}, fmt.Errorf("probe: no tenant %q in the file (%s)", name, strings.Join(names, ", "))
}
