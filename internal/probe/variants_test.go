package probe_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/probe"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// gapVariant is one answer the vendor's documents leave open, as a
// simulator setting, with what the probe must report about it.
type gapVariant struct {
	name   string
	sim    cecsim.Config
	faults []cecsim.Fault // injected before the probe
	// check is the row that names the variant, and what it must say.
	check, says string
	// does, if set, is what the row must say the bridge will do.
	does    string
	status  probe.Status
	suggest []probe.Suggestion
	exit    int
	// after the call cycle, exercise what the variant is about (nil: none).
	exercise func(t *testing.T, sim *cecsim.Sim, ev *events, tenant string)
	// cms, if set, gives the tenant a cms block for the simulator.
	cms *configs.CMS
	// tenant, if set, changes the tenant's configuration further.
	tenant func(tc *configs.Tenant)
}

// simCMS is a cms block for the simulator's default credentials.
func simCMS(sk string) *configs.CMS {
	return &configs.CMS{AK: "cms-ak", SK: configs.Secret(sk), CCID: 1, VDNs: []configs.CMSVDN{{VDN: 1}},
		SignedHeaders: []string{"host"}, Timestamp: configs.CMSTimestampSeconds, Concurrency: 2}
}

var gapVariants = []gapVariant{
	{name: "no call as empty list", check: "calls: idle agent", says: "retcode 0, result []", status: probe.StatusOK},
	{name: "no call as no result", sim: cecsim.Config{NoCallMode: cecsim.NoCallOmit},
		check: "calls: idle agent", says: "retcode 0 without a result", status: probe.StatusOK},
	{name: "no call as 900-002", sim: cecsim.Config{NoCallMode: cecsim.NoCallError, NoCallCode: "900-002"},
		check: "calls: idle agent", says: "code 900-002", status: probe.StatusFix, exit: 2,
		suggest: []probe.Suggestion{{Key: "no_call_codes", Value: []string{"900-002"}}}},
	{name: "no call as 000-002", sim: cecsim.Config{NoCallMode: cecsim.NoCallError, NoCallCode: "000-002"},
		check: "calls: idle agent", says: "code 000-002", status: probe.StatusFix, exit: 2,
		suggest: []probe.Suggestion{{Key: "no_call_codes", Value: []string{"000-002"}}}},
	{name: "no call as 100-007", sim: cecsim.Config{NoCallMode: cecsim.NoCallError, NoCallCode: "100-007"},
		check: "calls: idle agent", says: "code 100-007", status: probe.StatusFix, exit: 2,
		suggest: []probe.Suggestion{{Key: "no_call_codes", Value: []string{"100-007"}}}},
	{name: "empty poll as null", sim: cecsim.Config{EmptyPollMode: cecsim.EmptyPollNull},
		check: "event poll", says: "empty poll: event null", status: probe.StatusOK},
	{name: "empty poll as empty object", sim: cecsim.Config{EmptyPollMode: cecsim.EmptyPollEmptyObject},
		check: "event poll", says: "empty poll: event {}", status: probe.StatusOK},
	{name: "empty poll as no event member", check: "event poll", says: "empty poll: no event member", status: probe.StatusOK},
	{name: "expired token: the simulator's default", check: "bad token", says: `HTTP 401, body {"error":"token expired"}`,
		status: probe.StatusOK, exercise: revokeTokens},
	{name: "expired token 401 with a text body", sim: cecsim.Config{ExpiredTokenBody: "Unauthorized"},
		check: "bad token", says: "HTTP 401, body Unauthorized", status: probe.StatusOK, exercise: revokeTokens},
	{name: "expired token 401 with no body", sim: cecsim.Config{ExpiredTokenNoBody: true},
		check: "bad token", says: "HTTP 401, body (empty)", status: probe.StatusOK, exercise: revokeTokens},
	{name: "expired token 403 with a vendor body", sim: cecsim.Config{ExpiredTokenStatus: 403, ExpiredTokenBody: `{"retCode":"403","retMsg":"token invalid"}`},
		check: "bad token", says: `HTTP 403, body {"retCode":"403","retMsg":"token invalid"}`, status: probe.StatusOK, exercise: revokeTokens},
	{name: "expired token 401 with a vendor body", sim: cecsim.Config{ExpiredTokenStatus: 401, ExpiredTokenBody: `{"retCode":"401","retMsg":"token invalid"}`},
		check: "bad token", says: `HTTP 401, body {"retCode":"401","retMsg":"token invalid"}`, status: probe.StatusOK, exercise: revokeTokens},
	{name: "expired token 403 with a JSON body", sim: cecsim.Config{ExpiredTokenStatus: 403, ExpiredTokenBody: `{"error":"forbidden"}`},
		check: "bad token", says: `HTTP 403, body {"error":"forbidden"}`, status: probe.StatusOK, exercise: revokeTokens},
	{name: "expired token 403 with a text body", sim: cecsim.Config{ExpiredTokenStatus: 403, ExpiredTokenBody: "Forbidden"},
		check: "bad token", says: "HTTP 403, body Forbidden", status: probe.StatusOK, exercise: revokeTokens},
	{name: "flat regServ", sim: cecsim.Config{FlatRegServ: true},
		check: "phones", says: "registration server flat", status: probe.StatusOK, exercise: suspendPhone},
	{name: "nested regServ", check: "phones", says: "registration server nested (singleRegServ)", status: probe.StatusOK, exercise: suspendPhone},
	{name: "static GUID", sim: cecsim.Config{AuthMode: cecsim.AuthStatic},
		check: "GUID", says: "no new GUID within 400ms", status: probe.StatusOK},
	{name: "dynamic GUID", sim: cecsim.Config{GUIDInterval: 150 * time.Millisecond, GUIDTimeout: time.Second},
		check: "GUID", says: "dynamic: a new GUID came in Set-GUID", status: probe.StatusOK},
	{name: "loginex not offered", sim: cecsim.Config{NoLoginEx: true},
		check: "sign-in", says: "loginex refused (HTTP 404", status: probe.StatusOK},
	{name: "throttled once", faults: []cecsim.Fault{{Endpoint: "allcallinfoEx", Kind: cecsim.FaultThrottle, Count: 1}},
		check: "throttling", says: "throttled 1 times: allcallinfoEx x1", status: probe.StatusWarn},
	{name: "CMS on", cms: simCMS("cms-sk"),
		check: "cms", says: "queryagentcalls answered for 8 of 8 agents asked (1 in a call", status: probe.StatusOK},
	{name: "CMS not licensed", cms: simCMS("cms-sk"), sim: cecsim.Config{CMS: cecsim.CMS{NotLicensed: true}},
		check: "cms", says: "code 0100003", status: probe.StatusWarn},
	{name: "CMS refusing this client (HTTP 403)", cms: simCMS("cms-sk"), sim: cecsim.Config{CMS: cecsim.CMS{RefuseClient: true}},
		check: "cms", says: "HTTP 403, CMS refused this client", status: probe.StatusWarn,
		does: "sweeps nothing: every agent is polled one by one (CMS refuses this host: ask the vendor's operations to put its address on the tenant's IP whitelist)"},
	{name: "CMS with a wrong secret key", cms: simCMS("not-the-key"),
		check: "cms", says: "CMS refused every signature variant (HTTP 401", status: probe.StatusWarn},
	{name: "CMS off", check: "cms", says: "CMS not configured", status: probe.StatusSkip},
	{name: "CMS accepting another signing variant", cms: simCMS("cms-sk"),
		sim:   cecsim.Config{CMS: cecsim.CMS{SignedHeaders: []string{"content-length", "content-type", "host"}, Timestamp: cecsim.C2Millis}},
		check: "cms", says: "the configured signature was refused (HTTP 401); signing content-length;content-type;host with milliseconds timestamps is accepted",
		status: probe.StatusFix, exit: 2, exercise: swept,
		suggest: []probe.Suggestion{{Key: "cms.signed_headers", Value: []string{"content-length", "content-type", "host"}}, {Key: "cms.timestamp", Value: "milliseconds"}}},
	{name: "agents of another VDN", sim: cecsim.Config{AgentsPerVDN: 4}, tenant: twoVDNs,
		check: "calls: other VDN", says: "agent 1005 (monitor 1005's) asked through monitor 1001: code 000-002", status: probe.StatusOK,
		exercise: func(t *testing.T, sim *cecsim.Sim, ev *events, tenant string) { callCycle(t, sim, ev, tenant, 1006) }},
	{name: "token shorter than asked", sim: cecsim.Config{TokenMaxLifetime: 2 * time.Minute},
		check: "token", says: "granted 2m0s of 10m0s asked", status: probe.StatusWarn,
		suggest: []probe.Suggestion{{Key: "token_lifetime", Value: "2m0s"}}},
}

// Against the simulator in each variant of each documentation gap, the
// probe names the variant and suggests the configuration that makes the
// bridge work; a bridge started with that suggestion then reports a call
// starting and ending without losing sight of any agent.
func TestProbeNamesEachGapVariantAndItsSuggestionWorks(t *testing.T) {
	srv := natstest.RunServer(t)
	for i, v := range gapVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			tenant := fmt.Sprintf("gap%d", i)
			sim := startSim(t, v.sim)
			// An agent the scan asks about holds a call, so that the
			// in-call answer is seen too.
			if _, err := sim.StartCall(1002); err != nil {
				t.Fatal(err)
			}
			for _, f := range v.faults {
				sim.Inject(f)
			}
			tc := tenantFor(tenant, sim)
			if v.cms != nil {
				tc = withCMS(tc, v.cms, sim.URL())
			}
			if v.tenant != nil {
				v.tenant(&tc)
			}
			_, report := runProbe(t, tc, probe.Options{GUIDWatch: 400 * time.Millisecond})
			got := row(t, report, v.check)
			contains(t, v.check, got.Answered, v.says)
			contains(t, v.check, got.Bridge, v.does)
			if got.Status != v.status {
				t.Errorf("%s: status %s, want %s (%+v)", v.check, got.Status, v.status, got)
			}
			if !slices.EqualFunc(report.Suggest, v.suggest, sameSuggestion) {
				t.Errorf("suggested %+v, want %+v", report.Suggest, v.suggest)
			}
			if report.ExitCode() != v.exit {
				t.Errorf("exit code %d (%s), want %d", report.ExitCode(), report.Verdict, v.exit)
			}
			if in := row(t, report, "calls: in a call"); in.Status != probe.StatusOK {
				t.Errorf("in-call row: %+v", in)
			}
			assertReadOnly(t, sim, tc.Monitors[0].AgentID, nil)
			if t.Failed() {
				t.Logf("report: %+v", report.Checks)
				return
			}

			applied, err := probe.Apply(tc, report.Suggest)
			if err != nil {
				t.Fatal(err)
			}
			// The bridge runs with the YAML the table printed, pasted in.
			tc = pasteSuggestedConfig(t, tc, report)
			if !reflect.DeepEqual(tc, applied) {
				t.Fatalf("the printed YAML pasted gives\n%+v\nthe suggestions applied\n%+v", tc, applied)
			}
			nc := srv.Connect(t)
			ev := collect(t, nc, tenant)
			runBridge(t, srv.URL(), nc, tc)
			callCycle(t, sim, ev, tenant, 1003)
			if v.exercise != nil {
				v.exercise(t, sim, ev, tenant)
			}
		})
	}
}

func sameSuggestion(a, b probe.Suggestion) bool {
	return a.Key == b.Key && fmt.Sprint(a.Value) == fmt.Sprint(b.Value)
}

// revokeTokens makes the bridge meet the expired-token answer, then checks
// that a softphone change still arrives.
func revokeTokens(t *testing.T, sim *cecsim.Sim, ev *events, tenant string) {
	t.Helper()
	sim.RevokeTokens()
	if err := sim.SetSoftphone(1004, "77771004", ""); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 15*time.Second, "the softphone change after the token was refused", func() bool {
		return has(ev, schemas.AgentSoftphoneSubject(tenant, 1004), func(s schemas.AgentSoftphone) bool { return s.SIPAccount == "77771004" })
	})
}

// twoVDNs gives agents 1001-1004 (VDN 1) and 1005-1008 (VDN 2) a monitor
// each.
func twoVDNs(tc *configs.Tenant) {
	tc.Monitors = []configs.Monitor{{AgentID: 1001, Password: "agent-pass", WorkNos: "1001-1004"},
		{AgentID: 1005, Password: "agent-pass", WorkNos: "1005-1008"}}
}

// swept checks that the bridge sweeps CMS: only a sweep publishes a call
// with its status on calls_v2.
func swept(t *testing.T, sim *cecsim.Sim, ev *events, tenant string) {
	t.Helper()
	id, err := sim.StartCall(1004)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 15*time.Second, "the call with its status on calls_v2", func() bool {
		return has(ev, schemas.AgentCallsV2Subject(tenant, 1004), func(v schemas.AgentCallsV2) bool {
			return len(v.Calls) == 1 && v.Calls[0].ID == id
		})
	})
}

// suspendPhone checks that a registration change arrives, whatever the
// shape of the registration servers.
func suspendPhone(t *testing.T, sim *cecsim.Sim, ev *events, tenant string) {
	t.Helper()
	if err := sim.SetPhoneStatus("88881004", 1); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 15*time.Second, "the suspended phone", func() bool {
		return has(ev, schemas.PhoneStateSubject(tenant, "88881004"), func(s schemas.PhoneState) bool { return s.StatusCode == 1 })
	})
}

// Without the suggested no_call_codes, a tenant that says "no call" with
// a code makes the bridge lose sight of its idle agents: what the
// suggestion fixes is real.
func TestWithoutTheSuggestionIdleAgentsAreNotVisible(t *testing.T) {
	srv := natstest.RunServer(t)
	sim := startSim(t, cecsim.Config{NoCallMode: cecsim.NoCallError, NoCallCode: "900-002"})
	nc := srv.Connect(t)
	ev := collect(t, nc, "nosugg")
	runBridge(t, srv.URL(), nc, tenantFor("nosugg", sim))
	testwait.For(t, 15*time.Second, "idle agents reported not visible", func() bool { return len(ev.lost("nosugg")) > 0 })
}

// With CMS on, the probe also checks that CMS and the gateway name the
// same calls, and the bridge started with the tenant's configuration
// sweeps (its calls_v2 subject carries the call's status).
func TestProbeComparesCMSWithTheGateway(t *testing.T) {
	sim := startSim(t, cecsim.Config{})
	id, err := sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	tc := withCMS(tenantFor("cmsgw", sim), simCMS("cms-sk"), sim.URL())
	_, report := runProbe(t, tc, probe.Options{GUIDWatch: 100 * time.Millisecond})
	got := row(t, report, "cms: agrees with gateway")
	if got.Status != probe.StatusOK {
		t.Fatalf("cms vs gateway: %+v", got)
	}
	contains(t, "cms: agrees with gateway", got.Answered, "agent 1002: CMS and the gateway name the same call IDs")
	assertReadOnly(t, sim, 1001, nil)
	if st := row(t, report, "cms: states"); st.Status != probe.StatusOK {
		t.Fatalf("states: %+v", st)
	}
	srv := natstest.RunServer(t)
	nc := srv.Connect(t)
	ev := collect(t, nc, "cmsgw")
	runBridge(t, srv.URL(), nc, tc)
	testwait.For(t, 15*time.Second, "the call with its status on calls_v2", func() bool {
		return has(ev, schemas.AgentCallsV2Subject("cmsgw", 1002), func(v schemas.AgentCallsV2) bool {
			return len(v.Calls) == 1 && v.Calls[0].ID == id && v.Calls[0].Status == "alerting"
		})
	})
}
