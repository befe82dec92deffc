package app_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
)

// A tenant with a cms block is swept: its agents are reported by the
// sweep (metrics say how many), a call on an idle agent comes out on
// agent.calls and agent.calls_v2. When CMS stops answering, the bridge
// stays ready, says it is degraded, and polls every agent one by one.
func TestTenantWithCMSIsSweptAndDegradesGracefully(t *testing.T) {
	e := newOpsEnv(t, 8)
	tc := &e.cfg.Tenants[0]
	tc.Intervals.Idle = time.Hour // only the sweep sees idle agents quickly
	tc.Intervals.Sweep = 100 * time.Millisecond
	tc.CMS = &configs.CMS{URL: e.sim.URL(), AK: "cms-ak", SK: "cms-sk", CCID: 1, VDNs: []configs.CMSVDN{{VDN: 1}}, Concurrency: 2}
	e.cfg = configs.WithDefaults(e.cfg)
	rb := runBridge(t, e.cfg, e.srv.Connect(t), slog.New(slog.DiscardHandler))
	base := rb.httpBase(t)
	swept := func() float64 {
		v, _ := sample(scrapeMetrics(t, base), "cecbridge_sweep_agents", map[string]string{"tenant": "ops"})
		return v
	}
	testwait.For(t, 15*time.Second, "every agent swept", func() bool { return swept() == 8 })

	js := natstest.JetStream(t, e.srv.Connect(t))
	id, err := e.sim.StartCall(1004)
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{schemas.AgentCallsSubject("ops", 1004), schemas.AgentCallsV2Subject("ops", 1004)} {
		testwait.For(t, 10*time.Second, "the call on "+subject, func() bool {
			m, err := lastOn(t, js, subject)
			return err == nil && strings.Contains(string(m), id)
		})
	}

	e.sim.SetCMSLicensed(false)
	r := waitReadyz(t, base, "ready and degraded", func(code int, r readyz) bool {
		return code == http.StatusOK && r.Degraded["tenant.ops.cms"] != ""
	})
	if !strings.Contains(r.Degraded["tenant.ops.cms"], "polled one by one") {
		t.Fatalf("degraded detail %q", r.Degraded["tenant.ops.cms"])
	}
	testwait.For(t, 10*time.Second, "no agent swept", func() bool { return swept() == 0 })
	if v, ok := sample(scrapeMetrics(t, base), "cecbridge_sweep_state", map[string]string{"tenant": "ops", "state": "unavailable"}); !ok || v != 1 {
		t.Fatalf("cecbridge_sweep_state{unavailable} = %v (%v)", v, ok)
	}
	if err := e.sim.EndCall(1004, id); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the call's end seen without CMS", func() bool {
		m, err := lastOn(t, js, schemas.AgentCallsSubject("ops", 1004))
		return err == nil && strings.Contains(string(m), `"after":{"call_ids":[]}`)
	})
}

// lastOn is the body of the last message on subject in CEC_EVENTS.
func lastOn(t *testing.T, js jetstream.JetStream, subject string) ([]byte, error) {
	t.Helper()
	m, err := lastMsgOn(t, js, subject)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

// lastMsgOn is the last message on subject in CEC_EVENTS.
func lastMsgOn(t *testing.T, js jetstream.JetStream, subject string) (*jetstream.RawStreamMsg, error) {
	t.Helper()
	s, err := js.Stream(t.Context(), "CEC_EVENTS")
	if err != nil {
		return nil, err
	}
	return s.GetLastMsgForSubject(t.Context(), subject)
}
