package cec_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
)

// ---- helpers ----

func startSim(t testing.TB, cfg cecsim.Config) *cecsim.Sim {
	t.Helper()
	if cfg.Agents == 0 {
		cfg.Agents = 20
	}
	if cfg.LongPollHold == 0 {
		cfg.LongPollHold = 50 * time.Millisecond
	}
	return cecsimtest.Start(t, cfg)
}

func newClient(t testing.TB, sim *cecsim.Sim, mod func(*cec.Config)) *cec.Client {
	t.Helper()
	cfg := cec.Config{
		FabricURL: sim.URL(), GatewayURL: sim.URL(),
		AppKey: "app-key", AppSecret: "app-secret",
		RequestTimeout: 5 * time.Second, LongPollTimeout: 5 * time.Second,
	}
	return configured(t, cfg, mod, cec.New)
}

// configured applies mod (if any) to cfg and builds from it, failing the
// test on an error.
func configured[C, T any](t testing.TB, cfg C, mod func(*C), build func(C) (T, error)) T {
	t.Helper()
	if mod != nil {
		mod(&cfg)
	}
	v, err := build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// startSession runs a session and waits for its sign-in. stop ends Run and
// returns its error; it is also called when the test ends.
func startSession(t testing.TB, c *cec.Client, sc cec.SessionConfig) (*cec.Session, func() error) {
	t.Helper()
	if sc.AgentID == 0 {
		sc.AgentID = 1001
	}
	if sc.Password == "" {
		sc.Password = "agent-pass"
	}
	s := c.NewSession(sc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := s.WaitReady(wctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return s, stop
}

// runSession runs a session until the test ends and waits for sign-in.
func runSession(t testing.TB, c *cec.Client, sc cec.SessionConfig) *cec.Session {
	t.Helper()
	s, stop := startSession(t, c, sc)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func counter(sim *cecsim.Sim, name string) int64 { return sim.Counters()[name] }

type outcomeObserver struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomeObserver) ObserveRequest(endpoint, outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[endpoint+"/"+outcome]++
}

func (o *outcomeObserver) get(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[k]
}

// ---- API Fabric ----

func TestFabricQueries(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 150, LooseTypes: true})
	c := newClient(t, sim, nil)
	ctx := context.Background()

	info, err := c.QueryAgentInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Agents) != 150 || info.SIPServerIP == "" || info.SIPServerPort == 0 {
		t.Fatalf("agent info: %d agents, %q:%d", len(info.Agents), info.SIPServerIP, info.SIPServerPort)
	}
	for _, a := range info.Agents {
		truth, ok := sim.Agent(a.WorkNo)
		if !ok || truth.SIPAccount != a.SIPAccount || truth.AccountCode != a.AccountCode || a.SIPPassword.Reveal() == "" {
			t.Fatalf("agent %d: got %+v truth %+v", a.WorkNo, a, truth)
		}
	}

	phones, err := c.QueryPhones(ctx)
	if err != nil {
		t.Fatal(err)
	}
	truth := sim.Phones()
	if len(phones) != len(truth) || len(truth) <= 100 {
		t.Fatalf("phones: got %d, truth %d (want a multi-page walk)", len(phones), len(truth))
	}
	got := map[string]int{}
	for _, p := range phones {
		got[p.PhoneNum] = p.Status
	}
	for _, p := range truth {
		if st, ok := got[p.PhoneNum]; !ok || st != p.Status {
			t.Fatalf("phone %s: got %d/%v want %d", p.PhoneNum, st, ok, p.Status)
		}
	}

	var acct string
	for _, a := range info.Agents {
		if a.AccountCode != "" {
			acct = a.AccountCode
			break
		}
	}
	if acct == "" {
		t.Fatal("no agent with an account code in the sim roster")
	}
	aa, err := c.QueryAgentByAccount(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if tr, _ := sim.Agent(aa.WorkNo); tr.AccountCode != acct {
		t.Fatalf("account %s resolved to %+v", acct, aa)
	}
	if _, err := c.QueryAgentByAccount(ctx, "no-such-account"); !errors.Is(err, cec.ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}
	if !c.TokenExpiry().After(time.Now()) {
		t.Fatal("TokenExpiry not in the future")
	}
}

func TestTokenSingleFlight(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5})
	c := newClient(t, sim, nil)
	ctx := context.Background()

	concurrently := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		var failed atomic.Int64
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				if _, err := c.QueryAgentByAccount(ctx, "acct1001"); err != nil && !errors.Is(err, cec.ErrNotFound) {
					failed.Add(1)
					t.Log(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if failed.Load() != 0 {
			t.Fatalf("%d of %d callers failed", failed.Load(), n)
		}
	}

	concurrently(1000)
	if n := counter(sim, "token"); n != 1 {
		t.Fatalf("1000 cold callers made %d token requests, want 1", n)
	}
	// Revocation: every caller holding the dead token gets 401, yet only one
	// renewal happens and every caller succeeds on its single retry.
	sim.RevokeTokens()
	concurrently(1000)
	if n := counter(sim, "token"); n != 2 {
		t.Fatalf("after revocation: %d token requests in total, want 2", n)
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 3})
	obs := &outcomeObserver{}
	c := newClient(t, sim, func(cfg *cec.Config) { cfg.TokenLifetime = 2 * time.Second; cfg.Observer = obs })
	ctx := context.Background()
	if _, err := c.QueryAgentInfo(ctx); err != nil {
		t.Fatal(err)
	}
	first := c.TokenExpiry()
	// Keep querying: past 80 % of the life a renewal must start in the
	// background while the old token still serves.
	testwait.For(t, 5*time.Second, "token renewed", func() bool {
		if _, err := c.QueryAgentInfo(ctx); err != nil {
			t.Fatal(err)
		}
		return c.TokenExpiry().After(first)
	})
	if !time.Now().Before(first) {
		t.Fatalf("token renewed only after it expired (%v)", first)
	}
	if n := obs.get("queryAgentInfo/unauthorized"); n != 0 {
		t.Fatalf("%d requests were refused: renewal came too late", n)
	}
	if n := counter(sim, "token"); n != 2 {
		t.Fatalf("token requests %d, want 2", n)
	}
}

func TestTokenEndpointRecovers(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 3})
	sim.Inject(cecsim.Fault{Endpoint: "token", Kind: cecsim.FaultHTTPStatus, Status: 503, Count: 2})
	c := newClient(t, sim, nil)
	if _, err := c.QueryAgentInfo(context.Background()); err != nil {
		t.Fatalf("token fetch should back off and recover: %v", err)
	}
	if n := counter(sim, "token"); n != 3 {
		t.Fatalf("token requests %d, want 3", n)
	}
}

func TestBadCredentials(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 3})
	c := newClient(t, sim, func(cfg *cec.Config) { cfg.AppSecret = "wrong-secret" })
	_, err := c.QueryAgentInfo(context.Background())
	if !errors.Is(err, cec.ErrUnauthorized) || cec.Retryable(err) {
		t.Fatalf("want non-retryable ErrUnauthorized, got %v", err)
	}
}

func TestPageDrift(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 150})
	// Change the roster between the first and second page, over real HTTP.
	var pages atomic.Int64
	hc := &http.Client{Transport: hookTransport{after: func(r *http.Request) {
		if r.URL.Path == "/apiaccess/CC-Management/v2/mobileAgent/queryPhone" && pages.Add(1) == 1 {
			if err := sim.AddAgent(5000); err != nil {
				t.Error(err)
			}
		}
	}}}
	c := newClient(t, sim, func(cfg *cec.Config) { cfg.HTTPClient = hc })
	phones, err := c.QueryPhones(context.Background())
	if !errors.Is(err, cec.ErrPageDrift) || phones != nil {
		t.Fatalf("want ErrPageDrift and no result, got %d phones, %v", len(phones), err)
	}
	if !cec.Retryable(err) {
		t.Fatal("drift should be retryable")
	}
	// With the world still again, the next walk is complete.
	phones, err = c.QueryPhones(context.Background())
	if err != nil || len(phones) != len(sim.Phones()) {
		t.Fatalf("second walk: %d phones, %v", len(phones), err)
	}
}

type hookTransport struct{ after func(*http.Request) }

func (h hookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		h.after(r)
	}
	return resp, err
}

// ---- faults ----

func TestFaultClasses(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5})
	c := newClient(t, sim, func(cfg *cec.Config) { cfg.RequestTimeout = 300 * time.Millisecond })
	s := runSession(t, c, cec.SessionConfig{})
	ctx := context.Background()
	fabric := func() error { _, err := c.QueryAgentInfo(ctx); return err }
	phone := func() error { _, err := c.QueryPhonePage(ctx, 0, 10); return err }
	gateway := func() error {
		ids, err := s.AllCallInfo(ctx, 1002)
		if err != nil && ids != nil {
			t.Errorf("result alongside error: %v", ids)
		}
		return err
	}
	m := newCMS(t, sim, c, nil)
	chunk := cec.Chunk{VDN: 1, Agents: []int{1001, 1002}}
	cmsCalls := func() error { _, err := m.QueryAgentCalls(ctx, chunk); return err }
	cmsStates := func() error { _, err := m.QueryAgentStates(ctx, chunk); return err }
	cmsTotal := func() error { _, err := m.TotalAgentState(ctx, 1); return err }
	cases := []struct {
		name     string
		fault    cecsim.Fault
		call     func() error
		want     error
		code     string
		retry    bool
		minAfter time.Duration
	}{
		{"fabric 502", cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultHTTPStatus}, fabric, cec.ErrUpstream, "", true, 0},
		{"fabric 400", cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultHTTPStatus, Status: 400}, fabric, cec.ErrBadResponse, "", true, 0},
		{"fabric garbled", cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultGarbled}, fabric, cec.ErrBadResponse, "", true, 0},
		{"fabric truncated", cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultTruncated}, fabric, cec.ErrBadResponse, "", true, 0},
		{"fabric throttle", cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultThrottle}, fabric, cec.ErrRateLimited, "", true, time.Second},
		{"fabric latency", cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultLatency, Latency: time.Second}, fabric, cec.ErrUpstream, "", true, 0},
		{"phone vendor code", cecsim.Fault{Endpoint: "queryPhone", Kind: cecsim.FaultVendorCode, Code: "1"}, phone, cec.ErrVendor, "1", false, 0},
		{"gateway 502", cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultHTTPStatus}, gateway, cec.ErrUpstream, "", true, 0},
		{"gateway garbled", cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultGarbled}, gateway, cec.ErrBadResponse, "", true, 0},
		{"gateway truncated", cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultTruncated}, gateway, cec.ErrBadResponse, "", true, 0},
		{"gateway throttle", cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultThrottle}, gateway, cec.ErrRateLimited, "000-007", true, 0},
		{"gateway latency", cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultLatency, Latency: time.Second}, gateway, cec.ErrUpstream, "", true, 0},
		{"gateway 100-007", cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultVendorCode, Code: "100-007"}, gateway, cec.ErrVendor, "100-007", true, 0},
		{"gateway 900-002", cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultVendorCode, Code: "900-002"}, gateway, cec.ErrVendor, "900-002", false, 0},
		{"cms 502", cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultHTTPStatus}, cmsCalls, cec.ErrUpstream, "", true, 0},
		{"cms 403 whitelist", cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultHTTPStatus, Status: 403}, cmsCalls, cec.ErrUnauthorized, "", false, 0},
		{"cms garbled", cecsim.Fault{Endpoint: "agentstatusinfobyagentids", Kind: cecsim.FaultGarbled}, cmsStates, cec.ErrBadResponse, "", true, 0},
		{"cms truncated", cecsim.Fault{Endpoint: "totalagentstate", Kind: cecsim.FaultTruncated}, cmsTotal, cec.ErrBadResponse, "", true, 0},
		{"cms throttle", cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultThrottle}, cmsCalls, cec.ErrRateLimited, "", true, time.Second},
		{"cms latency", cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultLatency, Latency: time.Second}, cmsCalls, cec.ErrUpstream, "", true, 0},
		{"cms 0100001 call failed", cecsim.Fault{Endpoint: "agentstatusinfobyagentids", Kind: cecsim.FaultVendorCode, Code: "0100001"}, cmsStates, cec.ErrUpstream, "0100001", true, 0},
		{"cms 0100003 not licensed", cecsim.Fault{Endpoint: "totalagentstate", Kind: cecsim.FaultVendorCode, Code: "0100003"}, cmsTotal, cec.ErrNotSupported, "0100003", false, 0},
		{"cms 0100999 unknown", cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultVendorCode, Code: "0100999"}, cmsCalls, cec.ErrVendor, "0100999", true, 0},
		{"cms 0101003 permission", cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultVendorCode, Code: "0101003"}, cmsCalls, cec.ErrUnauthorized, "0101003", false, 0},
		{"cms other code", cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultVendorCode, Code: "0109999"}, cmsCalls, cec.ErrVendor, "0109999", false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim.ClearFaults()
			tc.fault.Count = 1
			sim.Inject(tc.fault)
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var e *cec.Error
			if !errors.As(err, &e) || e.Code != tc.code || e.RetryAfter < tc.minAfter {
				t.Fatalf("error detail %#v", e)
			}
			if cec.Retryable(err) != tc.retry {
				t.Fatalf("Retryable = %v", !tc.retry)
			}
			// The fault is gone: the next call works.
			if err := tc.call(); err != nil {
				t.Fatalf("after fault: %v", err)
			}
		})
	}
	if !s.Ready() {
		t.Fatal("faults on queries must not drop the session")
	}
}

func TestContextErrorsStayMatchable(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 3})
	c := newClient(t, sim, nil)
	sim.Inject(cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultLatency, Latency: 2 * time.Second, Count: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.QueryAgentInfo(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || cec.Retryable(err) {
		t.Fatalf("got %v", err)
	}
}

// ---- gateway sessions ----

func TestNoCallModes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    cecsim.NoCallMode
		codes   []string
		wantErr error
	}{
		{"empty list", cecsim.NoCallEmpty, nil, nil},
		{"no result", cecsim.NoCallOmit, nil, nil},
		{"configured code", cecsim.NoCallError, []string{"900-002"}, nil},
		{"unconfigured code", cecsim.NoCallError, nil, cec.ErrVendor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, cecsim.Config{Agents: 5, NoCallMode: tc.mode})
			c := newClient(t, sim, func(cfg *cec.Config) { cfg.NoCallCodes = tc.codes })
			s := runSession(t, c, cec.SessionConfig{})
			ctx := context.Background()
			ids, err := s.AllCallInfo(ctx, 1002)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || ids != nil {
					t.Fatalf("got %v %v, want %v", ids, err, tc.wantErr)
				}
			} else if err != nil || ids == nil || len(ids) != 0 {
				t.Fatalf("no call: got %#v %v", ids, err)
			}
			id1, err := sim.StartCall(1002)
			if err != nil {
				t.Fatal(err)
			}
			id2, err := sim.StartCall(1002)
			if err != nil {
				t.Fatal(err)
			}
			ids, err = s.AllCallInfo(ctx, 1002)
			want := []string{id1, id2}
			slices.Sort(want)
			if err != nil || !slices.Equal(ids, want) {
				t.Fatalf("two calls: got %v %v, want %v", ids, err, want)
			}
			ci, err := s.CallInfo(ctx, id1)
			if err != nil || ci.CallID != id1 {
				t.Fatalf("CallInfo: %+v %v", ci, err)
			}
		})
	}
}

func TestEmptyPollModesAndEvents(t *testing.T) {
	for _, mode := range []cecsim.EmptyPollMode{cecsim.EmptyPollAbsent, cecsim.EmptyPollNull, cecsim.EmptyPollEmptyObject} {
		t.Run("mode", func(t *testing.T) {
			sim := startSim(t, cecsim.Config{Agents: 5, EmptyPollMode: mode})
			c := newClient(t, sim, nil)
			var mu sync.Mutex
			var events []cec.AgentEvent
			s := runSession(t, c, cec.SessionConfig{OnEvent: func(ev cec.AgentEvent) {
				mu.Lock()
				events = append(events, ev)
				mu.Unlock()
			}})
			// Drain the sign-in events, then let several empty polls pass.
			base := counter(sim, "agentevent")
			testwait.For(t, 5*time.Second, "empty polls", func() bool { return counter(sim, "agentevent") >= base+3 })
			if !s.Ready() {
				t.Fatal("empty polls dropped the session")
			}
			mu.Lock()
			for _, ev := range events {
				if ev.Type == "" {
					t.Fatalf("empty poll surfaced as an event: %+v", ev)
				}
			}
			n := len(events)
			mu.Unlock()
			id, err := sim.StartCall(1001)
			if err != nil {
				t.Fatal(err)
			}
			testwait.For(t, 5*time.Second, "talking event", func() bool {
				mu.Lock()
				defer mu.Unlock()
				for _, ev := range events[n:] {
					if ev.Type == "AgentEvent_Talking" && ev.WorkNo == "1001" && string(ev.Content) != "" && !ev.GenTime.IsZero() {
						return true
					}
				}
				return false
			})
			st, err := s.AgentStatus(context.Background())
			if err != nil || st.AgentState != 7 || !st.IsWorking {
				t.Fatalf("AgentStatus in call: %+v %v", st, err)
			}
			_ = id
		})
	}
}

func TestGUIDRotationUnderLoad(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5, GUIDInterval: 60 * time.Millisecond, GUIDTimeout: 120 * time.Millisecond, LongPollHold: 20 * time.Millisecond})
	obs := &outcomeObserver{}
	c := newClient(t, sim, func(cfg *cec.Config) { cfg.Observer = obs })
	s := runSession(t, c, cec.SessionConfig{})
	base := counter(sim, "agentevent")
	var stop atomic.Bool
	var calls, failures atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := s.AllCallInfo(context.Background(), 1002); err != nil {
					failures.Add(1)
					t.Log(err)
				}
				calls.Add(1)
			}
		})
	}
	// Each empty poll after the interval rotates the GUID: wait for many.
	testwait.For(t, 10*time.Second, "rotations", func() bool { return counter(sim, "agentevent") >= base+8 })
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d calls failed across GUID rotations", failures.Load(), calls.Load())
	}
	if n := counter(sim, "login") + counter(sim, "forcelogin"); n != 1 {
		t.Fatalf("rotation caused re-sign-in: %d sign-ins", n)
	}
	if calls.Load() < 100 {
		t.Fatalf("only %d calls ran", calls.Load())
	}
}

func TestReSignInAfterKickOut(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5})
	var states sync.Map
	c := newClient(t, sim, nil)
	s := runSession(t, c, cec.SessionConfig{OnState: func(st cec.SessionState) { states.Store(st, true) }})
	sim.KickOut(1001)
	// Right after the kick-out a query must fail as session lost, never
	// answer "no call".
	ids, err := s.AllCallInfo(context.Background(), 1002)
	if err == nil {
		// The poll loop may not have noticed yet and the kick-out raced
		// the query; the sim signs the session out synchronously, so this
		// must not happen.
		t.Fatalf("query after kick-out answered %v", ids)
	}
	if !errors.Is(err, cec.ErrSessionLost) || ids != nil {
		t.Fatalf("got %v %v", ids, err)
	}
	testwait.For(t, 5*time.Second, "signed in again", func() bool { return s.Ready() && sim.SessionSignedIn(1001) })
	if _, err := s.AllCallInfo(context.Background(), 1002); err != nil {
		t.Fatalf("after re-sign-in: %v", err)
	}
	if _, ok := states.Load(cec.Lost); !ok {
		t.Fatal("OnState never reported Lost")
	}
}

func TestInvalidatedGUIDRecovers(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5})
	c := newClient(t, sim, nil)
	s := runSession(t, c, cec.SessionConfig{})
	sim.InvalidateGUID(1001)
	_, err := s.AllCallInfo(context.Background(), 1002)
	if !errors.Is(err, cec.ErrSessionLost) {
		t.Fatalf("got %v", err)
	}
	var e *cec.Error
	if !errors.As(err, &e) {
		t.Fatalf("not an *Error: %v", err)
	}
	// The agent is still signed in at the gateway: login says 100-002 and
	// the session takes over with forcelogin.
	testwait.For(t, 5*time.Second, "recovered", func() bool {
		_, err := s.AllCallInfo(context.Background(), 1002)
		return err == nil
	})
	if counter(sim, "forcelogin") < 1 {
		t.Fatal("expected a forcelogin")
	}
}

func TestForceLoginWhenAlreadySignedIn(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5})
	// A previous bridge instance left a live session behind.
	_, stopOld := startSession(t, newClient(t, sim, nil), cec.SessionConfig{})
	// Freeze the old instance without a sign-out, as a crash would.
	sim.Inject(cecsim.Fault{Endpoint: "logout", Kind: cecsim.FaultHTTPStatus, Status: 503, Count: 1})
	_ = stopOld()
	if !sim.SessionSignedIn(1001) {
		t.Fatal("setup: old session should still be signed in")
	}
	c := newClient(t, sim, nil)
	s := runSession(t, c, cec.SessionConfig{})
	if n := counter(sim, "forcelogin"); n != 1 {
		t.Fatalf("forcelogin count %d, want 1", n)
	}
	if _, err := s.AllCallInfo(context.Background(), 1002); err != nil {
		t.Fatal(err)
	}
}

func TestSignOutOnCancel(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5})
	s, stop := startSession(t, newClient(t, sim, nil), cec.SessionConfig{})
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if sim.SessionSignedIn(1001) || counter(sim, "logout") != 1 || s.State() != cec.SignedOut {
		t.Fatalf("not signed out: signedIn=%v logout=%d state=%v", sim.SessionSignedIn(1001), counter(sim, "logout"), s.State())
	}
	_, err := s.AllCallInfo(context.Background(), 1002)
	if !errors.Is(err, cec.ErrSessionNotReady) || !errors.Is(err, cec.ErrSessionLost) {
		t.Fatalf("query on a signed-out session: %v", err)
	}
}

func TestWrongAgentPasswordKeepsRetrying(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5})
	c := newClient(t, sim, nil)
	s := c.NewSession(cec.SessionConfig{AgentID: 1001, Password: "bad-pass"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testwait.For(t, 5*time.Second, "two sign-in attempts", func() bool { return counter(sim, "login") >= 2 })
	if s.Ready() {
		t.Fatal("ready with a wrong password")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// ---- benchmark ----

func BenchmarkAllCallInfoParallel(b *testing.B) {
	sim := startSim(b, cecsim.Config{Agents: 50})
	c := newClient(b, sim, nil)
	s := runSession(b, c, cec.SessionConfig{})
	for wn := 1002; wn < 1050; wn += 3 {
		if _, err := sim.StartCall(wn); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			wn := 1002 + int(n.Add(1)%48)
			if _, err := s.AllCallInfo(ctx, wn); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

type countingLimiter struct{ n atomic.Int64 }

func (l *countingLimiter) Wait(ctx context.Context) error { l.n.Add(1); return ctx.Err() }

func TestLimiterOnlyOnQueries(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5})
	lim := &countingLimiter{}
	c := newClient(t, sim, func(cfg *cec.Config) { cfg.Limiter = lim })
	s := runSession(t, c, cec.SessionConfig{})
	base := counter(sim, "agentevent")
	if _, err := c.QueryAgentInfo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AllCallInfo(context.Background(), 1002); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "polls continue", func() bool { return counter(sim, "agentevent") >= base+2 })
	// Token, sign-in and event polls bypass the budget.
	if n := lim.n.Load(); n != 2 {
		t.Fatalf("limiter waited %d times, want 2", n)
	}
}
