package app_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
)

// holders counts the tenants each instance holds, from the lease keys.
func holders(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	out := map[string]int{}
	kv, err := js.KeyValue(t.Context(), "cecbridge_leases")
	if err != nil {
		return out
	}
	lister, err := kv.ListKeysFiltered(t.Context(), "tenant.*")
	if err != nil {
		return out
	}
	defer func() { _ = lister.Stop() }()
	for key := range lister.Keys() {
		if e, err := kv.Get(t.Context(), key); err == nil {
			out[string(e.Value())]++
		}
	}
	return out
}

func spread(want ...int) func(map[string]int) bool {
	return func(h map[string]int) bool {
		if len(h) != len(want) {
			return false
		}
		for _, n := range h {
			if n != want[0] {
				return false
			}
		}
		return true
	}
}

// Three instances share twelve tenants four each; when one stops the
// other two take its tenants (six each) within a lease TTL or so; when it
// comes back the tenants spread four each again; when it dies (no release)
// the other two have its tenants within a TTL and a few seconds. No tenant is polled by
// two instances at any time: no monitoring agent was ever forced out of a
// session another instance held, and in every tenant's history one term
// ends before the next begins.
func TestTenantsSpreadFairlyAndMoveCleanly(t *testing.T) {
	srv := natstest.RunServer(t)
	sim := cecsimtest.Start(t, cecsim.Config{Agents: 16, LongPollHold: 100 * time.Millisecond, NoPollTimeout: 10 * time.Second})
	var tenants []configs.Tenant
	for i := range 12 {
		tc := tenantCfg(fmt.Sprintf("t%02d", i), sim.URL(), "app-key", "app-secret", "agent-pass")
		tc.Monitors[0].AgentID = 1001 + i // each tenant its own monitoring session
		tc.Intervals = configs.Intervals{Calls: 200 * time.Millisecond, Idle: time.Second, Roster: time.Second, Phones: time.Second, Heartbeat: time.Second}
		tenants = append(tenants, tc)
	}
	base := configs.WithDefaults(configs.Bridge{
		NATS:    configs.NATS{URLs: []string{srv.URL()}, ReconnectWait: 50 * time.Millisecond},
		Lookup:  configs.Lookup{Disabled: true},
		Lease:   configs.Lease{TTL: 2 * time.Second},
		Tenants: tenants,
	})
	type instance struct {
		nc     *nats.Conn
		stop   func()
		bridge *runningBridge
	}
	polls := &pollLog{}
	logs := map[string]*testbuf.Buffer{}
	start := func(name string) *instance {
		cfg := base
		cfg.Instance = name
		// Each instance reaches the vendor through a front that records
		// its call-ID polls, by monitoring agent (that is, by tenant).
		front := polls.front(t, name, sim)
		cfg.Tenants = slices.Clone(base.Tenants)
		for i := range cfg.Tenants {
			cfg.Tenants[i].FabricURL, cfg.Tenants[i].GatewayURL = front, front
		}
		if name == "a" {
			cfg.HTTP.Listen = "127.0.0.1:0" // its /readyz and /metrics say what it holds
		}
		nc := srv.Connect(t, nats.ReconnectBufSize(-1))
		if logs[name] == nil {
			logs[name] = &testbuf.Buffer{}
		}
		log := slog.New(slog.NewJSONHandler(logs[name], nil))
		rb := runBridge(t, cfg, nc, log)
		return &instance{nc: nc, stop: rb.stop, bridge: rb}
	}
	js := natstest.JetStream(t, srv.Connect(t))
	var last map[string]int
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tenants held at the end: %v", last)
		}
	})
	wait := func(d time.Duration, what string, cond func(map[string]int) bool) {
		t.Helper()
		testwait.For(t, d, what, func() bool { last = holders(t, js); return cond(last) })
	}

	a := start("a")
	start("b")
	c := start("c")
	wait(30*time.Second, "4/4/4", spread(4, 4, 4))
	checkAssignmentShown(t, a.bridge.httpBase(t), 3, 4, last["a"])

	c.stop() // cleanly: its leases are released, its presence withdrawn
	wait(base.Lease.TTL+5*time.Second, "6/6", spread(6, 6))
	checkAssignmentShown(t, a.bridge.httpBase(t), 2, 6, last["a"])

	c = start("c")
	wait(30*time.Second, "4/4/4 again", spread(4, 4, 4))
	// Every hand-over so far was clean: signed out before the lease was
	// released, so no successor had to push a session out.
	if n := sim.Counters()["forcelogin"]; n != 0 {
		t.Errorf("%d forced sign-ins during clean hand-overs, want 0", n)
	}

	// c dies: its connection goes first, so it releases nothing; its
	// leases and its presence expire with the TTL.
	c.nc.Close()
	c.stop()
	wait(base.Lease.TTL+5*time.Second, "6/6 after a crash", spread(6, 6))

	checkTermsDoNotOverlap(t, js)
	polls.checkWithinTerms(t, termsFromLogs(t, logs))
}

// termSpan is one term of one instance on one tenant, from the bridge's log.
type termSpan struct {
	instance   string
	start, end time.Time
}

// termsFromLogs reads the lease terms of every instance from its log:
// "lease term started" and "lease term ended", by tenant. A term still
// running when the log was read ends now.
func termsFromLogs(t *testing.T, logs map[string]*testbuf.Buffer) map[string][]termSpan {
	t.Helper()
	out := map[string][]termSpan{}
	for instance, buf := range logs {
		open := map[string]time.Time{} // term -> start
		tenantOf := map[string]string{}
		for _, line := range strings.Split(buf.String(), "\n") {
			var rec struct {
				Time  time.Time `json:"time"`
				Msg   string    `json:"msg"`
				Lease string    `json:"lease"`
				Term  string    `json:"term"`
			}
			if json.Unmarshal([]byte(line), &rec) != nil || rec.Term == "" {
				continue
			}
			switch rec.Msg {
			case "lease term started; polling":
				open[rec.Term], tenantOf[rec.Term] = rec.Time, strings.TrimPrefix(rec.Lease, "tenant.")
			case "lease term ended":
				if st, ok := open[rec.Term]; ok {
					out[tenantOf[rec.Term]] = append(out[tenantOf[rec.Term]], termSpan{instance, st, rec.Time})
					delete(open, rec.Term)
				}
			}
		}
		for term, st := range open {
			out[tenantOf[term]] = append(out[tenantOf[term]], termSpan{instance, st, time.Now()})
		}
	}
	for tenant, spans := range out {
		for i, a := range spans {
			for _, b := range spans[i+1:] {
				if a.start.Before(b.end) && b.start.Before(a.end) {
					t.Errorf("tenant %s: %s's term %s-%s and %s's term %s-%s overlap", tenant,
						a.instance, a.start.Format("15:04:05.000"), a.end.Format("15:04:05.000"),
						b.instance, b.start.Format("15:04:05.000"), b.end.Format("15:04:05.000"))
				}
			}
		}
	}
	return out
}

// pollLog records, per monitoring agent, which instance polled when.
type pollLog struct {
	mu    sync.Mutex
	polls map[string][]poll // by monitoring agent
}

type poll struct {
	instance string
	at       time.Time
}

func (l *pollLog) front(t *testing.T, instance string, sim *cecsim.Sim) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /agentgateway/resource/calldata/{monitor}/allcallinfoEx/{workNo}
		if parts := strings.Split(r.URL.Path, "/"); len(parts) > 5 && parts[5] == "allcallinfoEx" {
			l.mu.Lock()
			if l.polls == nil {
				l.polls = map[string][]poll{}
			}
			l.polls[parts[4]] = append(l.polls[parts[4]], poll{instance, time.Now()})
			l.mu.Unlock()
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// checkWithinTerms: every call-ID poll an instance made for a tenant falls
// within one of that instance's terms on the tenant (and the terms do not
// overlap, see termsFromLogs): no tenant was polled by two at once.
func (l *pollLog) checkWithinTerms(t *testing.T, terms map[string][]termSpan) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for monitor, polls := range l.polls {
		agent, _ := strconv.Atoi(monitor)
		tenant := fmt.Sprintf("t%02d", agent-1001)
		for _, p := range polls {
			within := func(s termSpan) bool {
				return s.instance == p.instance && !p.at.Before(s.start) && !p.at.After(s.end)
			}
			// A poll sent just before the term ended can reach the front
			// just after: that is no overlap as long as no other instance
			// had begun polling the tenant by then.
			trailing := func(s termSpan) bool {
				return s.instance == p.instance && p.at.After(s.end) && p.at.Sub(s.end) < 250*time.Millisecond &&
					!slices.ContainsFunc(terms[tenant], func(o termSpan) bool {
						return o.instance != p.instance && !o.start.After(p.at) && !o.end.Before(p.at)
					})
			}
			if !slices.ContainsFunc(terms[tenant], within) && !slices.ContainsFunc(terms[tenant], trailing) {
				t.Errorf("tenant %s: %s polled at %s outside its terms", tenant, p.instance, p.at.Format("15:04:05.000"))
				break
			}
		}
	}
}

// checkTermsDoNotOverlap reads the events stream: per tenant, the terms
// (from the Nats-Msg-Id suffix) must follow one another, never
// interleave.
func checkTermsDoNotOverlap(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	s, err := js.Stream(t.Context(), "CEC_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	type termSpan struct{ first, last uint64 }
	spans := map[string]map[string]*termSpan{} // tenant -> term -> span of stream seqs
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			continue
		}
		tenant := strings.Split(m.Subject, ".")[2]
		id := m.Header.Get(jetstream.MsgIDHeader)
		term := id[strings.LastIndexByte(id, '.')+1:]
		if spans[tenant] == nil {
			spans[tenant] = map[string]*termSpan{}
		}
		sp := spans[tenant][term]
		if sp == nil {
			sp = &termSpan{first: seq}
			spans[tenant][term] = sp
		}
		sp.last = seq
	}
	moved := 0
	for tenant, terms := range spans {
		moved += len(terms) - 1
		for t1, a := range terms {
			for t2, b := range terms {
				if t1 < t2 && a.first < b.last && b.first < a.last {
					t.Errorf("tenant %s: terms %s (%d-%d) and %s (%d-%d) wrote at the same time", tenant, t1, a.first, a.last, t2, b.first, b.last)
				}
			}
		}
	}
	if moved == 0 {
		t.Fatal("no tenant changed hands: the test proved nothing")
	}
}

// checkAssignmentShown checks that an instance's /readyz and metrics say
// what it holds: live instances, its share, its tenants.
func checkAssignmentShown(t *testing.T, base string, live, share, held int) {
	t.Helper()
	type readyzBody struct {
		Assignment struct {
			Live  int      `json:"live_instances"`
			Share int      `json:"share"`
			Held  []string `json:"held"`
		} `json:"assignment"`
	}
	var body readyzBody
	var fams map[string]*dto.MetricFamily
	// The instance's own view lags the bucket by a presence or lease
	// round: wait for it to agree.
	testwait.For(t, 10*time.Second, fmt.Sprintf("the assignment shown as %d live, share %d, %d held", live, share, held), func() bool {
		_, raw := httpGet(t, base+"/readyz")
		body = readyzBody{} // every answer read whole, nothing kept from the last
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("/readyz: %v: %s", err, raw)
		}
		fams = scrapeMetrics(t, base)
		return body.Assignment.Live == live && body.Assignment.Share == share && len(body.Assignment.Held) == held
	})
	if v, _ := sample(fams, "cecbridge_instances_live", nil); v != float64(live) {
		t.Errorf("cecbridge_instances_live %v, want %d", v, live)
	}
	if v, _ := sample(fams, "cecbridge_assignment_share", nil); v != float64(share) {
		t.Errorf("cecbridge_assignment_share %v, want %d", v, share)
	}
	polling := 0.0
	for _, tenant := range body.Assignment.Held {
		v, _ := sample(fams, "cecbridge_tenant_polling", map[string]string{"tenant": tenant})
		polling += v
	}
	if polling != float64(held) {
		t.Errorf("cecbridge_tenant_polling is 1 for %v of the %d tenants /readyz says are held", polling, held)
	}
	if _, ok := sample(fams, "cecbridge_assignment_moves_total", nil); !ok {
		t.Error("cecbridge_assignment_moves_total not exported")
	}
}
