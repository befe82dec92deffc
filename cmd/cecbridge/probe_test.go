package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/probe"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
)

// probeConfig writes a configuration with tenants on the simulator.
func probeConfig(t *testing.T, url string, tenants ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, name := range tenants {
		fmt.Fprintf(&b, `  - name: %s
    fabric_url: %[2]s
    gateway_url: %[2]s
    app_key: app-key
    app_secret: app-secret
    monitors:
      - agent_id: 1001
        password: agent-pass
`, name, url)
	}
	return writeFile(t, "probe.yaml", b.String())
}

// "cecbridge probe" prints progress on stderr and the report on stdout,
// writes a capture, and exits 2 when the configuration works only with the
// suggested change; the suggestion applied, it exits 0.
func TestProbeCommandExitStatusJSONAndCapture(t *testing.T) {
	sim := cecsimtest.Start(t, cecsim.Config{Agents: 6, LongPollHold: 50 * time.Millisecond,
		NoCallMode: cecsim.NoCallError, NoCallCode: "900-002"})
	file := probeConfig(t, sim.URL(), "acme")
	dir := filepath.Join(t.TempDir(), "capture")

	stdout, stderr, err := runCmd(t, "probe", "--config", file, "--json", "--capture", dir)
	var status exitStatus
	if !errors.As(err, &status) || status != 2 {
		t.Fatalf("exit %v, want status 2\n%s", err, stderr)
	}
	var report probe.Report
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("--json printed %q: %v", stdout, err)
	}
	if report.Verdict != probe.VerdictWithChange || len(report.Suggest) != 1 || report.Suggest[0].Key != "no_call_codes" {
		t.Errorf("report: %s, %+v", report.Verdict, report.Suggest)
	}
	for _, want := range []string{"probe acme: token ...", "probe acme: sign-out ...", "capture written to " + dir} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, cecsim.ReplayFile)); err != nil {
		t.Errorf("capture: %v", err)
	}

	// The suggestion applied, the same tenant works as configured.
	fixed := strings.Replace(readFile(t, file), "    monitors:", "    no_call_codes: [\"900-002\"]\n    monitors:", 1)
	stdout, stderr, err = runCmd(t, "probe", "--config", writeFile(t, "fixed.yaml", fixed))
	if err != nil {
		t.Fatalf("probe with the suggestion: %v\n%s\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "tenant acme: "+probe.VerdictWorks) || !strings.Contains(stdout, "reads code 900-002 as no call") {
		t.Errorf("table:\n%s", stdout)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// With several tenants the probe needs --tenant, and says which there are.
func TestProbeCommandNeedsTenantOfSeveral(t *testing.T) {
	file := probeConfig(t, "http://127.0.0.1:1", "acme", "globex")
	_, _, err := runCmd(t, "probe", "--config", file)
	if err == nil || !strings.Contains(err.Error(), "--tenant (acme, globex)") {
		t.Errorf("err = %v", err)
	}
	_, _, err = runCmd(t, "probe", "--config", file, "--tenant", "initech")
	if err == nil || !strings.Contains(err.Error(), `no tenant "initech"`) {
		t.Errorf("err = %v", err)
	}
}

// A tenant the probe cannot reach exits 1, and the report says why.
func TestProbeCommandExitsOneWhenItCannotWork(t *testing.T) {
	file := probeConfig(t, "http://127.0.0.1:1", "acme")
	stdout, stderr, err := runCmd(t, "probe", "--config", file, "--json")
	var status exitStatus
	if !errors.As(err, &status) || status != 1 {
		t.Fatalf("exit %v, want status 1\n%s", err, stderr)
	}
	var report probe.Report
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("--json printed %q: %v", stdout, err)
	}
	failed := map[string]bool{}
	for _, r := range report.Checks {
		failed[r.Check] = r.Status == probe.StatusFail
	}
	if report.Verdict != probe.VerdictCannot || !failed["token"] || !failed["sign-in"] {
		t.Errorf("report: %s, %+v", report.Verdict, report.Checks)
	}
}
