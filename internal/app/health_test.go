package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// Health, readiness and metrics.

// opsEnv is one NATS server, one started simulator and a bridge config with
// the HTTP listener on a free port.
type opsEnv struct {
	srv *natstest.Server
	sim *cecsim.Sim
	cfg configs.Bridge
}

func newOpsEnv(t *testing.T, agents int) *opsEnv {
	t.Helper()
	srv := natstest.RunServer(t)
	sim := opsSim(t, cecsim.Config{Agents: agents, GUIDInterval: 500 * time.Millisecond, GUIDTimeout: 2 * time.Second})
	startSim(t, sim)
	cfg := configs.WithDefaults(configs.Bridge{
		NATS:    configs.NATS{URLs: []string{srv.URL()}, ReconnectWait: 50 * time.Millisecond},
		HTTP:    configs.HTTP{Listen: "127.0.0.1:0"},
		Tenants: []configs.Tenant{tenantCfg("ops", sim.URL(), "app-key", "app-secret", "agent-pass")},
	})
	return &opsEnv{srv: srv, sim: sim, cfg: cfg}
}

type readyz struct {
	Status   string            `json:"status"`
	NotReady map[string]string `json:"not_ready"`
	Degraded map[string]string `json:"degraded"`
	Streams  []replicaHealth   `json:"streams"`
}

// replicaHealth is one stream's entry in /readyz.
type replicaHealth struct {
	Stream    string `json:"stream"`
	Reachable bool   `json:"reachable"`
	Leader    string `json:"leader"`
	Replicas  int    `json:"replicas"`
	Current   int    `json:"current"`
	Lagging   int    `json:"lagging"`
	Offline   int    `json:"offline"`
}

// stream returns the /readyz entry of a stream.
func (r readyz) stream(name string) replicaHealth {
	for _, h := range r.Streams {
		if h.Stream == name {
			return h
		}
	}
	return replicaHealth{}
}

func getReadyz(t *testing.T, base string) (int, readyz) {
	t.Helper()
	code, body := httpGet(t, base+"/readyz")
	var r readyz
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("/readyz answered %d with %q: %v", code, body, err)
	}
	return code, r
}

func waitReadyz(t *testing.T, base string, what string, cond func(int, readyz) bool) readyz {
	t.Helper()
	var last readyz
	var lastCode int
	// Every 25 ms: each check is a request to the bridge.
	if !testwait.PollEvery(20*time.Second, 25*time.Millisecond, func() bool {
		lastCode, last = getReadyz(t, base)
		return cond(lastCode, last)
	}) {
		t.Fatalf("timed out waiting for /readyz: %s; last %d %+v", what, lastCode, last)
	}
	return last
}

// /healthz answers while the process lives; /readyz flips with the NATS
// connection and with the tenant's gateway session, naming what is wrong.
func TestReadinessFlips(t *testing.T) {
	e := newOpsEnv(t, 4)
	e.cfg.Lookup.Disabled = true
	rb := runBridge(t, e.cfg, e.srv.Connect(t), slog.New(slog.DiscardHandler))
	base := rb.httpBase(t)

	healthy := func() {
		t.Helper()
		code, body := httpGet(t, base+"/healthz")
		if code != http.StatusOK || !strings.Contains(string(body), `"alive"`) {
			t.Fatalf("/healthz answered %d %s", code, body)
		}
	}
	healthy()
	r := waitReadyz(t, base, "ready", func(code int, _ readyz) bool { return code == http.StatusOK })
	if r.Status != "ready" || len(r.NotReady) != 0 {
		t.Fatalf("ready answer %+v", r)
	}
	for _, name := range []string{"CEC_EVENTS", "CEC_STATE"} {
		if h := r.stream(name); !h.Reachable || h.Replicas != 1 || h.Current != 1 || h.Lagging+h.Offline != 0 {
			t.Errorf("/readyz on one server: %s %+v, want its one replica current", name, h)
		}
	}

	// NATS down: not ready, naming nats; alive all the same.
	e.srv.Shutdown()
	r = waitReadyz(t, base, "503 naming nats", func(code int, r readyz) bool {
		return code == http.StatusServiceUnavailable && r.NotReady["nats"] != ""
	})
	if r.Status != "not ready" {
		t.Fatalf("not-ready answer %+v", r)
	}
	for k := range r.NotReady {
		if k != "nats" {
			t.Errorf("with only NATS down /readyz also names %q: %+v", k, r.NotReady)
		}
	}
	if h := r.stream("CEC_EVENTS"); h.Reachable || h.Current != 0 {
		t.Errorf("with NATS down /readyz says of CEC_EVENTS %+v", h)
	}
	healthy()
	e.srv.Start()
	waitReadyz(t, base, "ready after NATS is back", func(code int, _ readyz) bool { return code == http.StatusOK })

	// The monitoring session is kicked out and cannot sign in again.
	e.sim.Inject(cecsim.Fault{Endpoint: "login", Kind: cecsim.FaultHTTPStatus, Status: 503})
	e.sim.Inject(cecsim.Fault{Endpoint: "forcelogin", Kind: cecsim.FaultHTTPStatus, Status: 503})
	e.sim.KickOut(1001)
	r = waitReadyz(t, base, "503 naming the session", func(code int, r readyz) bool {
		return code == http.StatusServiceUnavailable && r.NotReady["tenant.ops.session"] != ""
	})
	if _, ok := r.NotReady["nats"]; ok {
		t.Fatalf("NATS reported down with only the session lost: %+v", r)
	}
	healthy()
	e.sim.ClearFaults()
	waitReadyz(t, base, "ready after the session signs in again", func(code int, _ readyz) bool { return code == http.StatusOK })
}

func scrapeMetrics(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics answered %d", code)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// sample finds the value of the sample of fam whose labels include want.
func sample(fams map[string]*dto.MetricFamily, fam string, want map[string]string) (float64, bool) {
	f, ok := fams[fam]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		ls := labelsOf(m)
		for k, v := range want {
			if ls[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// After a short scenario the metrics page has every documented family, with
// only bounded labels, and counts lookups by endpoint and code.
func TestMetricsFamiliesAndLabels(t *testing.T) {
	e := newOpsEnv(t, 5)
	e.cfg.Tenants[0].Budget = 500 // Burst left 0: the bridge must still poll
	var logs testbuf.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	rb := runBridge(t, e.cfg, e.srv.Connect(t), debugLogger(&logs))
	base := rb.httpBase(t)
	nc := e.srv.Connect(t)
	waitReadyz(t, base, "ready", func(code int, _ readyz) bool { return code == http.StatusOK })

	callID, err := e.sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	subj := func(ep string) string { return schemas.LookupPrefix + ".ops." + ep }
	testwait.For(t, 15*time.Second, "the call in the lookup view", func() bool {
		return strings.Contains(rawLookup(t, nc, subj(schemas.LookupAgentCalls), schemas.AgentCallsRequest{WorkNo: 1002}, true), callID)
	})
	e.sim.Inject(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultHTTPStatus, Status: 502, Count: 2})
	testwait.For(t, 15*time.Second, "an upstream error to be counted", func() bool {
		v, ok := sample(scrapeMetrics(t, base), "cecbridge_upstream_requests_total", map[string]string{"endpoint": "allcallinfoEx", "outcome": "upstream"})
		return ok && v >= 1
	})

	// Lookups: answered, not found, bad request.
	before, _ := sample(scrapeMetrics(t, base), "cecbridge_lookups_total", map[string]string{"endpoint": "phone.state", "code": "404"})
	rawLookup(t, nc, subj(schemas.LookupAgentsList), schemas.AgentsListRequest{}, false)
	rawLookup(t, nc, subj(schemas.LookupAgentSoftphone), schemas.AgentSoftphoneRequest{WorkNo: 1003}, false)
	for range 3 {
		if a := rawLookup(t, nc, subj(schemas.LookupPhoneState), schemas.PhoneStateRequest{PhoneNum: "55500000"}, true); !strings.Contains(a, "404") {
			t.Fatalf("unknown phone answered %s", a)
		}
	}
	if msg, err := nc.Request(subj(schemas.LookupAgentCalls), []byte(`{"work_no":`), 5*time.Second); err != nil || msg.Header.Get("Nats-Service-Error-Code") != "400" {
		t.Fatalf("malformed request: %v %v", err, msg)
	}

	// An answer is counted just after it is sent, on the endpoint's own
	// goroutine: wait for the counts rather than race them.
	var fams map[string]*dto.MetricFamily
	testwait.For(t, 10*time.Second, "the lookups counted", func() bool {
		fams = scrapeMetrics(t, base)
		for ep, code := range map[string]string{"agents.list": "ok", "agent.softphone": "ok", "agent.calls": "400", "phone.state": "404"} {
			if _, ok := sample(fams, "cecbridge_lookups_total", map[string]string{"tenant": "ops", "endpoint": ep, "code": code}); !ok {
				return false
			}
		}
		v, _ := sample(fams, "cecbridge_lookups_total", map[string]string{"tenant": "ops", "endpoint": "phone.state", "code": "404"})
		return v-before >= 3
	})
	if v, _ := sample(fams, "cecbridge_lookups_total", map[string]string{"tenant": "ops", "endpoint": "phone.state", "code": "404"}); v-before != 3 {
		t.Errorf("phone.state 404 counted %v times, want 3", v-before)
	}
	for ep, code := range map[string]string{"agents.list": "ok", "agent.softphone": "ok", "agent.calls": "400"} {
		if v, ok := sample(fams, "cecbridge_lookups_total", map[string]string{"tenant": "ops", "endpoint": ep, "code": code}); !ok || v < 1 {
			t.Errorf("cecbridge_lookups_total{endpoint=%q,code=%q} = %v, %v", ep, code, v, ok)
		}
	}
	if v, ok := sample(fams, "cecbridge_lookups_total", map[string]string{"endpoint": "agent.calls", "code": "ok"}); !ok || v < 1 {
		t.Errorf("agent.calls ok = %v, %v", v, ok)
	}

	// Every documented family, with exactly its documented label names.
	want := map[string][]string{
		"cecbridge_upstream_requests_total":             {"endpoint", "outcome", "tenant"},
		"cecbridge_upstream_request_duration_seconds":   {"endpoint", "tenant"},
		"cecbridge_polls_total":                         {"kind", "outcome", "tenant"},
		"cecbridge_events_total":                        {"tenant", "type"},
		"cecbridge_publish_attempts_total":              {"outcome"},
		"cecbridge_publish_duration_seconds":            nil,
		"cecbridge_publish_buffered_events":             nil,
		"cecbridge_agents":                              {"tenant", "visibility"},
		"cecbridge_gateway_sessions":                    {"state", "tenant"},
		"cecbridge_token_expiry_seconds":                {"tenant"},
		"cecbridge_upstream_budget_requests_per_second": {"tenant"},
		"cecbridge_nats_connected":                      nil,
		"cecbridge_lookups_total":                       {"code", "endpoint", "tenant"},
		"cecbridge_lookup_duration_seconds":             {"endpoint", "tenant"},
		"cecbridge_stream_replicas":                     {"state", "stream"},
	}
	for name, labels := range want {
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) == 0 {
			t.Errorf("family %s missing", name)
			continue
		}
		for _, m := range f.GetMetric() {
			var names []string
			for n := range labelsOf(m) {
				if name == "cecbridge_publish_duration_seconds" || !strings.HasSuffix(name, "_seconds") || n != "le" {
					names = append(names, n)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, labels) {
				t.Errorf("%s has labels %v, want %v", name, names, labels)
			}
		}
	}
	checks := []struct {
		fam    string
		labels map[string]string
		ok     func(float64) bool
	}{
		{"cecbridge_nats_connected", nil, func(v float64) bool { return v == 1 }},
		{"cecbridge_agents", map[string]string{"tenant": "ops", "visibility": "visible"}, func(v float64) bool { return v >= 1 }},
		{"cecbridge_gateway_sessions", map[string]string{"tenant": "ops", "state": "ready"}, func(v float64) bool { return v == 1 }},
		{"cecbridge_token_expiry_seconds", map[string]string{"tenant": "ops"}, func(v float64) bool { return v > 60 }},
		{"cecbridge_upstream_budget_requests_per_second", map[string]string{"tenant": "ops"}, func(v float64) bool { return v == 500 }},
		{"cecbridge_publish_attempts_total", map[string]string{"outcome": "ok"}, func(v float64) bool { return v > 0 }},
		{"cecbridge_events_total", map[string]string{"tenant": "ops", "type": schemas.TypeAgentCalls}, func(v float64) bool { return v >= 2 }},
		{"cecbridge_polls_total", map[string]string{"tenant": "ops", "kind": "calls", "outcome": "ok"}, func(v float64) bool { return v > 0 }},
		{"cecbridge_publish_buffered_events", nil, func(v float64) bool { return v >= 0 }},
		{"cecbridge_stream_replicas", map[string]string{"stream": "CEC_STATE", "state": "current"}, func(v float64) bool { return v == 1 }},
		{"cecbridge_stream_replicas", map[string]string{"stream": "CEC_EVENTS", "state": "offline"}, func(v float64) bool { return v == 0 }},
	}
	vis, _ := sample(fams, "cecbridge_agents", map[string]string{"tenant": "ops", "visibility": "visible"})
	notVis, _ := sample(fams, "cecbridge_agents", map[string]string{"tenant": "ops", "visibility": "not_visible"})
	if tracked := vis + notVis; tracked < 4 || tracked > 5 {
		t.Errorf("cecbridge_agents: %v visible + %v not visible, want the simulator's roster", vis, notVis)
	}
	for _, c := range checks {
		if v, ok := sample(fams, c.fam, c.labels); !ok || !c.ok(v) {
			t.Errorf("%s%v = %v (present %v)", c.fam, c.labels, v, ok)
		}
	}

	// Bounded label values: no work number, call ID, phone number or
	// account anywhere in a cecbridge_ label.
	var unbounded []string
	for _, w := range e.sim.Agents() {
		unbounded = append(unbounded, fmt.Sprint(w))
		if a, ok := e.sim.Agent(w); ok && a.SIPAccount != "" {
			unbounded = append(unbounded, a.SIPAccount)
		}
	}
	for _, p := range e.sim.Phones() {
		unbounded = append(unbounded, p.PhoneNum)
	}
	unbounded = append(unbounded, callID, "55500000")
	for name, f := range fams {
		if !strings.HasPrefix(name, "cecbridge_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for k, v := range labelsOf(m) {
				for _, u := range unbounded {
					if strings.Contains(v, u) {
						t.Errorf("%s label %s=%q holds an entity id (%s)", name, k, v, u)
					}
				}
			}
		}
	}
}
