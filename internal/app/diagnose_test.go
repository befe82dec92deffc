package app_test

import (
	"encoding/json"
	"log/slog"
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

// diagnosis waits for /readyz to name assumption for tenant, and returns
// the finding's fix.
func diagnosis(t *testing.T, base, tenant, assumption string) string {
	t.Helper()
	type finding struct{ Tenant, Assumption, Finding, Fix string }
	fix := ""
	testwait.For(t, 20*time.Second, "the "+assumption+" diagnosis in /readyz", func() bool {
		_, body := httpGet(t, base+"/readyz")
		var r struct {
			Diagnosis []finding `json:"diagnosis"`
		}
		_ = json.Unmarshal(body, &r)
		for _, f := range r.Diagnosis {
			if f.Tenant == tenant && f.Assumption == assumption {
				fix = f.Fix
				return true
			}
		}
		return false
	})
	return fix
}

// cmsTenant is the ops tenant with a cms block signed with sk, swept fast.
func cmsTenant(e *opsEnv, sk string) {
	tc := &e.cfg.Tenants[0]
	tc.Intervals.Sweep = 100 * time.Millisecond
	tc.CMS = &configs.CMS{URL: e.sim.URL(), AK: "cms-ak", SK: configs.Secret(sk), CCID: 1, VDNs: []configs.CMSVDN{{VDN: 1}}, Concurrency: 2}
	e.cfg = configs.WithDefaults(e.cfg)
}

// A tenant whose CMS refuses the signature (a wrong SK): the bridge names
// it in /readyz with the fix, counts it in the assumption metrics (so the
// assumption alert fires) and logs it once.
func TestCMSRefusingTheSignatureIsDiagnosed(t *testing.T) {
	e := newOpsEnv(t, 8)
	cmsTenant(e, "not-the-key")
	var logs testbuf.Buffer
	rb := runBridge(t, e.cfg, e.srv.Connect(t), debugLogger(&logs))
	base := rb.httpBase(t)

	fix := diagnosis(t, base, "ops", "cms_signature")
	for _, want := range []string{"cms.sk", "clock", "cecbridge probe", "cms.signed_headers"} {
		if !strings.Contains(fix, want) {
			t.Errorf("fix %q does not mention %s", fix, want)
		}
	}
	labels := map[string]string{"tenant": "ops", "assumption": "cms_signature"}
	fams := scrapeMetrics(t, base)
	if v, ok := sample(fams, "cecbridge_vendor_assumption_violated", labels); !ok || v != 1 {
		t.Errorf("violated = %v (%v)", v, ok)
	}
	if v, ok := sample(fams, "cecbridge_vendor_assumption_violations_total", labels); !ok || v < 1 {
		t.Errorf("violations = %v (%v)", v, ok)
	}
	// The sweep tries again (after its back-off) and is refused again;
	// the log still says it once.
	before, _ := sample(fams, "cecbridge_vendor_assumption_violations_total", labels)
	testwait.For(t, 20*time.Second, "another refused sweep", func() bool {
		v, _ := sample(scrapeMetrics(t, base), "cecbridge_vendor_assumption_violations_total", labels)
		return v > before
	})
	if n := strings.Count(logs.String(), "the vendor contradicts an assumption"); n != 1 {
		t.Errorf("logged %d times", n)
	}
	if strings.Contains(logs.String(), "not-the-key") {
		t.Error("the log holds the secret key")
	}
}

// A CMS that refuses this client (HTTP 403: not on the IP whitelist) is
// named as cms_unauthorized; the finding clears once CMS answers again.
func TestCMSRefusingTheClientIsDiagnosedUntilItAnswers(t *testing.T) {
	e := newOpsEnv(t, 8)
	cmsTenant(e, "cms-sk")
	e.sim.Inject(cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultHTTPStatus, Status: 403, Count: 1})
	rb := runBridge(t, e.cfg, e.srv.Connect(t), slog.New(slog.DiscardHandler))
	base := rb.httpBase(t)

	if fix := diagnosis(t, base, "ops", "cms_unauthorized"); !strings.Contains(fix, "IP whitelist") {
		t.Errorf("fix %q", fix)
	}
	labels := map[string]string{"tenant": "ops", "assumption": "cms_unauthorized"}
	testwait.For(t, 20*time.Second, "the finding cleared once CMS answers", func() bool {
		v, ok := sample(scrapeMetrics(t, base), "cecbridge_vendor_assumption_violated", labels)
		return ok && v == 0
	})
	if v, _ := sample(scrapeMetrics(t, base), "cecbridge_vendor_assumption_violations_total", labels); v != 1 {
		t.Errorf("violations = %v, want 1", v)
	}
}
