package probe_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/internal/probe"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// assertReadOnly checks against the simulator what the probe promises:
// no forcelogin was even tried, no agent but the configured monitor
// signed in (others holds sign-ins the test made itself), and no session
// the probe opened is left signed in.
func assertReadOnly(t *testing.T, sim *cecsim.Sim, monitor int, others map[int]int) {
	t.Helper()
	if n := sim.Counters()["forcelogin"]; n != 0 {
		t.Errorf("the probe sent %d forcelogin requests", n)
	}
	for agent, n := range sim.SignIns() {
		if before, theirs := others[agent]; theirs && n != before {
			t.Errorf("agent %d signed in %d times more; it was signed in already", agent, n-before)
		} else if !theirs && agent != monitor {
			t.Errorf("agent %d signed in %d times; only monitor %d may be", agent, n, monitor)
		}
	}
	for _, agent := range sim.LiveSessions() {
		if _, theirs := others[agent]; !theirs {
			t.Errorf("agent %d is left signed in", agent)
		}
	}
}

// closedURL is an address nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// When the configuration cannot work, the probe says which check failed
// and why, exits 1, and still changes nothing: a monitoring agent signed
// in elsewhere is reported, never taken over.
func TestProbeReportsWhatCannotWork(t *testing.T) {
	for _, tt := range []struct {
		name   string
		tenant func(t *testing.T, sim *cecsim.Sim) configs.Tenant
		// before runs ahead of the probe and returns the sign-ins it made.
		before      func(t *testing.T, sim *cecsim.Sim, tc configs.Tenant) map[int]int
		check, says string
		bridge      string
		// notAsked are checks that must be skipped for it.
		notAsked []string
	}{
		{name: "monitor signed in elsewhere",
			tenant: func(_ *testing.T, sim *cecsim.Sim) configs.Tenant { return tenantFor("elsewhere", sim) },
			before: signInElsewhere,
			check:  "sign-in", says: "code 100-002", bridge: "the probe never does"},
		{name: "wrong monitor password",
			tenant: func(_ *testing.T, sim *cecsim.Sim) configs.Tenant {
				tc := tenantFor("badpass", sim)
				tc.Monitors[0].Password = "not-the-password"
				return tc
			},
			check: "sign-in", says: "code 100-004", bridge: "check the password of monitor 1001"},
		{name: "refused app secret",
			tenant: func(_ *testing.T, sim *cecsim.Sim) configs.Tenant {
				tc := tenantFor("badsecret", sim)
				tc.AppSecret = "not-the-secret"
				return tc
			},
			check: "token", says: "HTTP 401", bridge: "check app_key and app_secret"},
		{name: "unreachable API Fabric",
			tenant: func(t *testing.T, sim *cecsim.Sim) configs.Tenant {
				tc := tenantFor("nofabric", sim)
				tc.FabricURL = closedURL(t)
				return tc
			},
			check: "token", says: "connection refused", bridge: "cannot read the API Fabric",
			notAsked: []string{"roster", "phones"}},
		{name: "unreachable gateway",
			tenant: func(t *testing.T, sim *cecsim.Sim) configs.Tenant {
				tc := tenantFor("nogateway", sim)
				tc.GatewayURL = closedURL(t)
				return tc
			},
			check: "sign-in", says: "connection refused", bridge: "signs in as agent 1001"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, cecsim.Config{})
			tc := tt.tenant(t, sim)
			var others map[int]int
			if tt.before != nil {
				others = tt.before(t, sim, tc)
			}
			_, report := runProbe(t, tc, probe.Options{})
			got := row(t, report, tt.check)
			if got.Status != probe.StatusFail {
				t.Errorf("%s: status %s, want fail (%+v)", tt.check, got.Status, got)
			}
			contains(t, tt.check, got.Answered, tt.says)
			contains(t, tt.check, got.Bridge, tt.bridge)
			if report.Verdict != probe.VerdictCannot || report.ExitCode() != 1 {
				t.Errorf("verdict %q, exit %d; want %q, 1", report.Verdict, report.ExitCode(), probe.VerdictCannot)
			}
			for _, check := range tt.notAsked {
				if r := row(t, report, check); r.Status != probe.StatusSkip {
					t.Errorf("%s was asked: %+v", check, r)
				}
			}
			assertReadOnly(t, sim, tc.Monitors[0].AgentID, others)
			if others != nil && !sim.SessionSignedIn(tc.Monitors[0].AgentID) {
				t.Error("the monitor's other sign-in was ended")
			}
			if t.Failed() {
				t.Logf("report: %+v", report.Checks)
			}
		})
	}
}

// signInElsewhere signs the tenant's monitor in the way a running bridge
// would have, and keeps the session alive while the test runs.
func signInElsewhere(t *testing.T, sim *cecsim.Sim, tc configs.Tenant) map[int]int {
	t.Helper()
	client, err := cec.New(app.ClientConfig(tc))
	if err != nil {
		t.Fatal(err)
	}
	m := tc.Monitors[0]
	s := client.NewSession(cec.SessionConfig{AgentID: m.AgentID, Password: cec.Secret(m.Password.Reveal())})
	if _, err := s.SignInOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.SignOut(ctx)
	})
	if !slices.Contains(sim.LiveSessions(), m.AgentID) {
		t.Fatal("the other sign-in did not take")
	}
	return map[int]int{m.AgentID: 1}
}
