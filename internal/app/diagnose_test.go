package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// A tenant that says "no call" with a code nobody configured: the bridge
// names it in /readyz with the fix, counts it in a metric and logs it once.
func TestUnconfiguredNoCallCodeIsDiagnosed(t *testing.T) {
	srv := natstest.RunServer(t)
	sim := opsSim(t, cecsim.Config{Agents: 20, NoCallMode: cecsim.NoCallError, NoCallCode: "900-002"})
	startSim(t, sim)
	cfg := configs.WithDefaults(configs.Bridge{
		NATS:    configs.NATS{URLs: []string{srv.URL()}},
		HTTP:    configs.HTTP{Listen: "127.0.0.1:0"},
		Lookup:  configs.Lookup{Disabled: true},
		Tenants: []configs.Tenant{tenantCfg("diag", sim.URL(), "app-key", "app-secret", "agent-pass")},
	})
	var logs testbuf.Buffer
	rb := runBridge(t, cfg, srv.Connect(t), debugLogger(&logs))
	base := rb.httpBase(t)

	type finding struct{ Tenant, Assumption, Finding, Fix string }
	var got []finding
	testwait.For(t, 20*time.Second, "a diagnosis in /readyz", func() bool {
		_, body := httpGet(t, base+"/readyz")
		var r struct {
			Diagnosis []finding `json:"diagnosis"`
		}
		_ = json.Unmarshal(body, &r)
		got = r.Diagnosis
		return len(got) > 0
	})
	if got[0].Tenant != "diag" || got[0].Assumption != "no_call_answer" || !strings.Contains(got[0].Fix, `no_call_codes: ["900-002"]`) {
		t.Errorf("diagnosis %+v", got)
	}
	fams := scrapeMetrics(t, base)
	if v, ok := sample(fams, "cecbridge_vendor_assumption_violated", map[string]string{"tenant": "diag", "assumption": "no_call_answer"}); !ok || v != 1 {
		t.Errorf("violated = %v (%v)", v, ok)
	}
	if v, ok := sample(fams, "cecbridge_vendor_assumption_violations_total", map[string]string{"tenant": "diag", "assumption": "no_call_answer"}); !ok || v < 25 {
		t.Errorf("violations = %v (%v)", v, ok)
	}
	if v, ok := sample(fams, "cecbridge_vendor_assumption_violated", map[string]string{"tenant": "diag", "assumption": "token_lifetime"}); !ok || v != 0 {
		t.Errorf("token_lifetime violated = %v (%v)", v, ok)
	}
	// More windows pass; the log still says it once.
	before, _ := sample(fams, "cecbridge_vendor_assumption_violations_total", map[string]string{"tenant": "diag", "assumption": "no_call_answer"})
	testwait.For(t, 20*time.Second, "another window of answers", func() bool {
		v, _ := sample(scrapeMetrics(t, base), "cecbridge_vendor_assumption_violations_total", map[string]string{"tenant": "diag", "assumption": "no_call_answer"})
		return v >= before+100
	})
	if n := strings.Count(logs.String(), "the vendor contradicts an assumption"); n != 1 {
		t.Errorf("logged %d times", n)
	}
	if code, _ := httpGet(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz answered %d: a diagnosis is detail, not unreadiness", code)
	}
}
