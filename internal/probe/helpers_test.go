package probe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.yaml.in/yaml/v3"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/internal/probe"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// startSim starts a simulator with fast timers and a static world.
func startSim(t *testing.T, cfg cecsim.Config) *cecsim.Sim {
	t.Helper()
	if cfg.Agents == 0 {
		cfg.Agents = 8
	}
	if cfg.LongPollHold == 0 {
		cfg.LongPollHold = 50 * time.Millisecond
	}
	if cfg.NoPollTimeout == 0 {
		cfg.NoPollTimeout = 10 * time.Second
	}
	return cecsimtest.Start(t, cfg)
}

// tenantFor is the tenant configuration of a simulator, with fast
// intervals, as an operator would write it before probing.
func tenantFor(name string, sim *cecsim.Sim) configs.Tenant { return configsFor(name, sim.URL()) }

// withCMS gives tc a copy of the cms block c, on the simulator at url.
func withCMS(tc configs.Tenant, c *configs.CMS, url string) configs.Tenant {
	cms := *c
	cms.URL = url
	tc.CMS = &cms
	return tc
}

func configsFor(name, url string) configs.Tenant {
	b := configs.WithDefaults(configs.Bridge{Tenants: []configs.Tenant{{
		Name: name, FabricURL: url, GatewayURL: url,
		AppKey: "app-key", AppSecret: "app-secret",
		Timeout:  2 * time.Second,
		Monitors: []configs.Monitor{{AgentID: 1001, Password: "agent-pass"}},
		Intervals: configs.Intervals{
			Calls: 50 * time.Millisecond, Idle: 100 * time.Millisecond,
			Roster: 100 * time.Millisecond, Phones: 100 * time.Millisecond, Heartbeat: 500 * time.Millisecond,
		},
	}}})
	return b.Tenants[0]
}

// runProbe probes tc and returns the report.
func runProbe(t *testing.T, tc configs.Tenant, opts probe.Options) (*probe.Probe, *probe.Report) {
	t.Helper()
	p, err := probe.New(tc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p, p.Run(t.Context())
}

// row returns the report row of check.
func row(t *testing.T, r *probe.Report, check string) probe.Row {
	t.Helper()
	for _, row := range r.Checks {
		if row.Check == check {
			return row
		}
	}
	t.Fatalf("no row %q in the report", check)
	return probe.Row{}
}

// events collects every event of one tenant from core NATS, validating
// each against its schema.
type events struct {
	t  *testing.T
	mu sync.Mutex
	by map[string][]schemas.Event // by subject
}

func collect(t *testing.T, nc *nats.Conn, tenant string) *events {
	t.Helper()
	e := &events{t: t, by: map[string][]schemas.Event{}}
	sub, err := nc.Subscribe("cec.evt."+tenant+".>", func(m *nats.Msg) {
		schematest.ValidateEvent(t, m.Data)
		var ev schemas.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Errorf("undecodable event on %s: %v", m.Subject, err)
			return
		}
		e.mu.Lock()
		e.by[m.Subject] = append(e.by[m.Subject], ev)
		e.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return e
}

// calls returns the call-ID lists of the agent's events, in order.
func (e *events) calls(tenant string, workNo int) [][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out [][]string
	for _, ev := range e.by[schemas.AgentCallsSubject(tenant, workNo)] {
		var ch schemas.Change[schemas.AgentCalls]
		if json.Unmarshal(ev.Data, &ch) == nil && ch.After != nil {
			out = append(out, ch.After.CallIDs)
		}
	}
	return out
}

// has reports whether a change event on subject has after matching.
func has[T any](e *events, subject string, match func(T) bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.by[subject] {
		var ch schemas.Change[T]
		if json.Unmarshal(ev.Data, &ch) == nil && ch.After != nil && match(*ch.After) {
			return true
		}
	}
	return false
}

// lost returns the visibility-lost events of the calls scope.
func (e *events) lost(tenant string) []schemas.Visibility {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []schemas.Visibility
	for _, ev := range e.by[schemas.BridgeSubject(tenant, schemas.BridgeVisibility)] {
		var v schemas.Visibility
		if json.Unmarshal(ev.Data, &v) == nil && v.State == schemas.VisibilityLost {
			out = append(out, v)
		}
	}
	return out
}

// runBridge runs a bridge for tc on nc until the test ends.
func runBridge(t *testing.T, natsURL string, nc *nats.Conn, tc configs.Tenant) {
	t.Helper()
	cfg := configs.WithDefaults(configs.Bridge{
		NATS:    configs.NATS{URLs: []string{natsURL}},
		Lookup:  configs.Lookup{Disabled: true},
		Lease:   configs.Lease{Disabled: true},
		Tenants: []configs.Tenant{tc},
	})
	ctx, cancel := context.WithCancel(context.Background())
	b, err := app.New(cfg, nc, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("bridge: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("bridge did not stop")
		}
	})
}

// callCycle starts and ends a call on workNo and waits for the bridge to
// report both.
func callCycle(t *testing.T, sim *cecsim.Sim, ev *events, tenant string, workNo int) {
	t.Helper()
	id, err := sim.StartCall(workNo)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 15*time.Second, "the call on the agent's subject", func() bool {
		return slices.ContainsFunc(ev.calls(tenant, workNo), func(ids []string) bool { return slices.Equal(ids, []string{id}) })
	})
	if err := sim.EndCall(workNo, id); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 15*time.Second, "the ended call on the agent's subject", func() bool {
		got := ev.calls(tenant, workNo)
		return len(got) > 0 && len(got[len(got)-1]) == 0 && slices.ContainsFunc(got, func(ids []string) bool { return len(ids) > 0 })
	})
	if lost := ev.lost(tenant); len(lost) > 0 {
		t.Errorf("agents reported not visible: %+v", lost)
	}
}

func contains(t *testing.T, what, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Errorf("%s: %q does not say %q", what, s, want)
	}
}

// pasteSuggestedConfig does what an operator does with the report's table:
// it takes the suggested configuration printed after it, parses it as
// YAML and merges its entry for tc's tenant into tc, refusing any key a
// tenant does not have. A report without suggestions must print none.
func pasteSuggestedConfig(t *testing.T, tc configs.Tenant, r *probe.Report) configs.Tenant {
	t.Helper()
	var table strings.Builder
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	at := strings.Index(table.String(), "# suggested configuration")
	if len(r.Suggest) == 0 {
		if at >= 0 {
			t.Errorf("a suggested configuration printed without suggestions:\n%s", table.String())
		}
		return tc
	}
	if at < 0 {
		t.Fatalf("no suggested configuration printed:\n%s", table.String())
	}
	snippet := table.String()[at:]
	var pasted struct {
		Tenants []yaml.Node `yaml:"tenants"`
	}
	if err := yaml.Unmarshal([]byte(snippet), &pasted); err != nil {
		t.Fatalf("the suggested configuration is not YAML: %v\n%s", err, snippet)
	}
	if len(pasted.Tenants) != 1 {
		t.Fatalf("the suggested configuration has %d tenants, want 1:\n%s", len(pasted.Tenants), snippet)
	}
	entry, err := yaml.Marshal(&pasted.Tenants[0])
	if err != nil {
		t.Fatal(err)
	}
	if tc.CMS != nil {
		c := *tc.CMS // the caller's cms block stays as it was
		tc.CMS = &c
	}
	name := tc.Name
	dec := yaml.NewDecoder(bytes.NewReader(entry))
	dec.KnownFields(true)
	if err := dec.Decode(&tc); err != nil {
		t.Fatalf("the suggested configuration does not fit a tenant: %v\n%s", err, snippet)
	}
	if tc.Name != name {
		t.Errorf("the suggested configuration is for tenant %q, not %q", tc.Name, name)
	}
	return tc
}
