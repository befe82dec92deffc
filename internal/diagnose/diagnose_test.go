package diagnose_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cecbridge/cecbridge/internal/diagnose"
	"github.com/cecbridge/cecbridge/poller/cec"
)

// counting is the observer behind the diagnoser: it must see everything.
type counting struct {
	mu       sync.Mutex
	requests int
	codes    int
}

func (c *counting) ObserveRequest(string, string, time.Duration) {
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
}
func (c *counting) ObserveCode(string, string)  { c.mu.Lock(); c.codes++; c.mu.Unlock() }
func (c *counting) ObserveToken(cec.TokenGrant) {}

// answers feeds n allcallinfoEx answers, coded of them with code.
func answers(o cec.Observer, n, coded int, code string) {
	f := o.(cec.FactObserver)
	for i := range n {
		if i < coded {
			o.ObserveRequest("allcallinfoEx", "vendor", time.Millisecond)
			f.ObserveCode("allcallinfoEx", code)
			continue
		}
		o.ObserveRequest("allcallinfoEx", "ok", time.Millisecond)
	}
}

func gauge(t *testing.T, d *diagnose.Diagnoser, tenant, assumption string) float64 {
	t.Helper()
	return value(t, d, "cecbridge_vendor_assumption_violated", tenant, assumption)
}

func counter(t *testing.T, d *diagnose.Diagnoser, tenant, assumption string) float64 {
	t.Helper()
	return value(t, d, "cecbridge_vendor_assumption_violations_total", tenant, assumption)
}

// value is the sample of family for tenant and assumption.
func value(t *testing.T, d *diagnose.Diagnoser, family, tenant, assumption string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(d)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != family {
			continue
		}
		for _, m := range f.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			if ls["tenant"] == tenant && ls["assumption"] == assumption {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s for %s/%s", family, tenant, assumption)
	return 0
}

// An unexplained code on most allcallinfoEx answers is named with its fix,
// logged once however long it lasts, counted, and withdrawn when a window
// passes without it; the observer behind sees every measurement.
func TestUnexplainedNoCallCodeIsNamedOnceWithItsFix(t *testing.T) {
	var logs bytes.Buffer
	d := diagnose.New(slog.New(slog.NewJSONHandler(&logs, nil)))
	behind := &counting{}
	o := d.Tenant("acme", behind)

	answers(o, 100, 10, "900-002") // a few: transient, not named
	if len(d.Findings()) != 0 {
		t.Fatalf("named after 10 of 100: %+v", d.Findings())
	}
	answers(o, 100, 80, "900-002")
	answers(o, 100, 80, "900-002")
	fs := d.Findings()
	if len(fs) != 1 || fs[0].Assumption != diagnose.NoCallAnswer || !strings.Contains(fs[0].Fix, `no_call_codes: ["900-002"]`) {
		t.Fatalf("findings %+v", fs)
	}
	if n := strings.Count(logs.String(), "contradicts an assumption"); n != 1 {
		t.Errorf("logged %d times:\n%s", n, logs.String())
	}
	if g := gauge(t, d, "acme", diagnose.NoCallAnswer); g != 1 {
		t.Errorf("violated = %v", g)
	}
	if behind.requests != 300 || behind.codes != 170 {
		t.Errorf("observer behind saw %d requests, %d codes", behind.requests, behind.codes)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(d)
	fams, _ := reg.Gather()
	for _, f := range fams {
		if f.GetName() == "cecbridge_vendor_assumption_violations_total" && len(f.GetMetric()) != len(diagnose.Assumptions) {
			t.Errorf("%d violation series, want one per assumption", len(f.GetMetric()))
		}
	}

	answers(o, 100, 0, "")
	if len(d.Findings()) != 0 || gauge(t, d, "acme", diagnose.NoCallAnswer) != 0 {
		t.Errorf("not withdrawn: %+v", d.Findings())
	}
}

// 000-002 on most answers points at the monitors' VDN ranges, not at
// no_call_codes.
func TestBadParameterCodePointsAtWorkNos(t *testing.T) {
	d := diagnose.New(slog.New(slog.DiscardHandler))
	answers(d.Tenant("acme", nil), 100, 60, "000-002")
	if fs := d.Findings(); len(fs) != 1 || !strings.Contains(fs[0].Fix, "work_nos") {
		t.Errorf("findings %+v", fs)
	}
}

// A token shorter than asked and a clock far off are named; a good token
// withdraws both.
func TestShortTokenAndClockSkewAreNamed(t *testing.T) {
	d := diagnose.New(slog.New(slog.DiscardHandler))
	f := d.Tenant("acme", nil).(cec.FactObserver)
	now := time.Now()
	f.ObserveToken(cec.TokenGrant{Requested: 10 * time.Minute, Granted: 5 * time.Minute,
		ServerTime: now.Add(-2 * time.Minute).Truncate(time.Second), Received: now})
	fs := d.Findings()
	if len(fs) != 2 || fs[0].Assumption != diagnose.ClockSkew || fs[1].Assumption != diagnose.TokenLifetime ||
		!strings.Contains(fs[1].Fix, "token_lifetime: 5m0s") || !strings.Contains(fs[0].Finding, "2m0s behind") {
		t.Fatalf("findings %+v", fs)
	}
	f.ObserveToken(cec.TokenGrant{Requested: 10 * time.Minute, Granted: 10 * time.Minute, ServerTime: now.Truncate(time.Second), Received: now})
	if fs := d.Findings(); len(fs) != 0 {
		t.Errorf("not withdrawn: %+v", fs)
	}
}

// refusals passes on what it is told.
type refusals struct {
	counting
	refused []string
}

func (r *refusals) ObserveRefusal(endpoint string, _ error) { r.refused = append(r.refused, endpoint) }

// A refused CMS signature and a refused client are told apart, passed on,
// counted per answer, and withdrawn only once every endpoint that was
// refused has answered again.
func TestCMSRefusalsAreNamedUntilCMSAnswers(t *testing.T) {
	d := diagnose.New(slog.New(slog.DiscardHandler))
	next := &refusals{}
	o := d.Tenant("acme", next)
	r := o.(cec.RefusalObserver)
	signature := &cec.Error{Endpoint: cec.EndpointQueryAgentCalls, HTTPStatus: 401, Err: cec.ErrSignatureRefused}
	forbidden := &cec.Error{Endpoint: cec.EndpointAgentStates, HTTPStatus: 403, Err: cec.ErrUnauthorized}

	r.ObserveRefusal(cec.EndpointQueryAgentCalls, signature)
	r.ObserveRefusal(cec.EndpointQueryAgentCalls, signature)
	r.ObserveRefusal(cec.EndpointAgentStates, forbidden)
	fs := d.Findings()
	if len(fs) != 2 || fs[0].Assumption != diagnose.CMSSignature || fs[1].Assumption != diagnose.CMSUnauthorized ||
		!strings.Contains(fs[0].Fix, "cms.signed_headers") || !strings.Contains(fs[1].Fix, "IP whitelist") {
		t.Fatalf("findings %+v", fs)
	}
	if len(next.refused) != 3 {
		t.Errorf("passed on %v", next.refused)
	}
	if v := counter(t, d, "acme", diagnose.CMSSignature); v != 2 {
		t.Errorf("cms_signature violations %v, want 2", v)
	}

	// An answer of another endpoint clears nothing; the refused one's does.
	o.ObserveRequest(cec.EndpointTotalAgentStates, "ok", time.Millisecond)
	if len(d.Findings()) != 2 {
		t.Errorf("withdrawn by another endpoint's answer: %+v", d.Findings())
	}
	o.ObserveRequest(cec.EndpointQueryAgentCalls, "ok", time.Millisecond)
	if fs := d.Findings(); len(fs) != 1 || fs[0].Assumption != diagnose.CMSUnauthorized {
		t.Errorf("after queryagentcalls answered: %+v", fs)
	}
	// The endpoint refused for another reason now: the old finding goes.
	r.ObserveRefusal(cec.EndpointAgentStates, signature)
	if fs := d.Findings(); len(fs) != 1 || fs[0].Assumption != diagnose.CMSSignature || gauge(t, d, "acme", diagnose.CMSUnauthorized) != 0 {
		t.Errorf("after the refusal changed: %+v", fs)
	}
	o.ObserveRequest(cec.EndpointAgentStates, "ok", time.Millisecond)
	if fs := d.Findings(); len(fs) != 0 {
		t.Errorf("not withdrawn: %+v", fs)
	}
}
