package cec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// newCMS builds a CMS client for the simulator's default credentials, with
// one VDN covering every agent unless mod says otherwise.
func newCMS(t testing.TB, sim *cecsim.Sim, c *cec.Client, mod func(*cec.CMSConfig)) *cec.CMS {
	t.Helper()
	cfg := cec.CMSConfig{URL: sim.URL(), AK: "cms-ak", SK: "cms-sk", CCID: 1, VDNs: []cec.VDN{{ID: 1}}}
	return configured(t, cfg, mod, c.NewCMS)
}

func sweepCalls(t testing.TB, m *cec.CMS, agents []int, limit int) []cec.ChunkResult[*cec.CallsAnswer] {
	t.Helper()
	chunks, unplanned := m.Plan(agents, limit)
	if len(unplanned) != 0 {
		t.Fatalf("unplanned agents %v", unplanned)
	}
	return cec.Sweep(cec.WithPriority(context.Background()), chunks, 4, m.QueryAgentCalls)
}

// A sweep in chunks sees every agent's calls with their status and
// direction, and names the same call IDs as the gateway.
func TestCMSSweepSeesTheSameCallsAsTheGateway(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 40, LooseTypes: true})
	c := newClient(t, sim, nil)
	s := runSession(t, c, cec.SessionConfig{})
	m := newCMS(t, sim, c, nil)
	ringing, err := sim.StartCall(1005)
	if err != nil {
		t.Fatal(err)
	}
	talking, _ := sim.StartCallWith(1007, cecsim.CallTalking, cecsim.Outbound)
	held, _ := sim.StartCall(1007)
	if err := sim.SetCallStatus(1007, held, cecsim.CallHeld); err != nil {
		t.Fatal(err)
	}
	agents := sim.Agents()
	results := sweepCalls(t, m, agents, 7)
	if len(results) != 6 {
		t.Fatalf("%d chunks for 40 agents of at most 7, want 6", len(results))
	}
	seen := 0
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("chunk %v: %v", r.Chunk.Agents, r.Err)
		}
		if len(r.Chunk.Agents) > 7 || len(r.Answer.NotObserved) != 0 || r.Answer.Received.Before(r.Answer.Sent) {
			t.Fatalf("chunk of %d agents, not observed %v", len(r.Chunk.Agents), r.Answer.NotObserved)
		}
		for _, a := range r.Answer.Agents {
			seen++
			gw, err := s.AllCallInfo(context.Background(), a.WorkNo)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.CallIDs(), gw) {
				t.Errorf("agent %d: CMS %v, gateway %v", a.WorkNo, a.CallIDs(), gw)
			}
		}
	}
	if seen != len(agents) {
		t.Fatalf("observed %d of %d agents", seen, len(agents))
	}
	want := map[string]cec.Call{
		ringing: {ID: ringing, Status: cec.CallAlerting, Direction: cec.DirectionInbound, MediaType: 5},
		talking: {ID: talking, Status: cec.CallTalking, Direction: cec.DirectionOutbound, MediaType: 5},
		held:    {ID: held, Status: cec.CallHeld, Direction: cec.DirectionInbound, MediaType: 5},
	}
	for _, r := range results {
		for _, a := range r.Answer.Agents {
			for _, call := range a.Calls {
				if call != want[call.ID] {
					t.Errorf("agent %d call %+v, want %+v", a.WorkNo, call, want[call.ID])
				}
				delete(want, call.ID)
			}
		}
	}
	if len(want) != 0 {
		t.Errorf("calls not reported: %v", want)
	}
}

func TestCMSRefusesAWrongSK(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5})
	c := newClient(t, sim, nil)
	m := newCMS(t, sim, c, func(cfg *cec.CMSConfig) { cfg.SK = "not-the-sk" })
	_, err := m.QueryAgentCalls(context.Background(), cec.Chunk{VDN: 1, Agents: []int{1001}})
	checkSignatureRefused(t, err, "not-the-sk")
}

func TestCMSRefusesASkewedClock(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5, CMS: cecsim.CMS{ClockSkew: time.Minute}})
	c := newClient(t, sim, nil)
	skew := 2 * time.Minute
	m := newCMS(t, sim, c, func(cfg *cec.CMSConfig) { cfg.Now = func() time.Time { return time.Now().Add(-skew) } })
	_, err := m.QueryAgentStates(context.Background(), cec.Chunk{VDN: 1, Agents: []int{1001}})
	checkSignatureRefused(t, err, "cms-sk")
	// Within the tolerance the same client is accepted.
	skew = 10 * time.Second
	if _, err := m.QueryAgentStates(context.Background(), cec.Chunk{VDN: 1, Agents: []int{1001}}); err != nil {
		t.Fatalf("a 10 s skew within a 1 min tolerance: %v", err)
	}
}

func checkSignatureRefused(t *testing.T, err error, secret string) {
	t.Helper()
	if !errors.Is(err, cec.ErrSignatureRefused) || !errors.Is(err, cec.ErrUnauthorized) || cec.Retryable(err) {
		t.Fatalf("got %v, want a non-retryable ErrSignatureRefused that is also ErrUnauthorized", err)
	}
	var e *cec.Error
	if !errors.As(err, &e) || e.HTTPStatus != 401 {
		t.Fatalf("error detail %#v", e)
	}
	if !strings.Contains(err.Error(), "check AK/SK and this host's clock") {
		t.Errorf("message %q does not say what to check", err)
	}
	// The simulator echoes the refused Authorization in its 401 body.
	for _, text := range []string{err.Error(), e.Excerpt} {
		if strings.Contains(text, secret) || strings.Contains(text, "cms-ak") || strings.Contains(text, "auth-v2/cms") {
			t.Errorf("credentials leaked: %q", text)
		}
	}
}

func TestCMSRefusesChunksOverTheLimitBeforeSending(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5})
	c := newClient(t, sim, nil)
	m := newCMS(t, sim, c, nil)
	big := make([]int, cec.MaxCallsAgents+1)
	for i := range big {
		big[i] = 1001 + i
	}
	ctx := context.Background()
	_, err := m.QueryAgentCalls(ctx, cec.Chunk{VDN: 1, Agents: big})
	if !errors.Is(err, cec.ErrInvalidRequest) || cec.Retryable(err) {
		t.Fatalf("got %v, want ErrInvalidRequest", err)
	}
	if _, err := m.QueryAgentStates(ctx, cec.Chunk{VDN: 1, Agents: big}); err != nil {
		t.Fatalf("agentstatusinfobyagentids takes up to 6,000: %v", err)
	}
	if n := counter(sim, "queryagentcalls"); n != 0 {
		t.Fatalf("%d oversized requests were sent", n)
	}
	// The simulator's own limit, for a client that did send one.
	sim.Inject(cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultVendorCode, Code: "0100002", Count: 1})
	if _, err := m.QueryAgentCalls(ctx, cec.Chunk{VDN: 1, Agents: []int{1001}}); !errors.Is(err, cec.ErrInvalidRequest) {
		t.Fatalf("0100002: %v", err)
	}
}

func TestCMSPlanSplitsByVDNAndLimit(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5})
	c := newClient(t, sim, nil)
	m := newCMS(t, sim, c, func(cfg *cec.CMSConfig) {
		cfg.VDNs = []cec.VDN{
			{ID: 9}, // every other agent
			{ID: 2, Covers: func(n int) bool { return n >= 2000 && n < 3000 }},
		}
	})
	var agents []int
	for n := 1000; n < 4000; n++ {
		agents = append(agents, n, n) // duplicates are dropped
	}
	agents = append(agents, 50, 1000000)
	chunks, unplanned := m.Plan(agents, 700)
	if !slices.Equal(unplanned, []int{50, 1000000}) {
		t.Errorf("unplanned %v", unplanned)
	}
	sizes := map[int][]int{}
	covered := 0
	for _, ch := range chunks {
		sizes[ch.VDN] = append(sizes[ch.VDN], len(ch.Agents))
		covered += len(ch.Agents)
		for _, wn := range ch.Agents {
			if vdn, _ := m.VDNOf(wn); vdn != ch.VDN {
				t.Fatalf("agent %d of VDN %d in a chunk of VDN %d", wn, vdn, ch.VDN)
			}
		}
	}
	// 1,000 agents of VDN 2 in two chunks of 500; 2,000 of VDN 9 in three
	// of 666 or 667: the fewest chunks, of nearly equal size.
	if !slices.Equal(sizes[2], []int{500, 500}) || !slices.Equal(sizes[9], []int{666, 667, 667}) || covered != 3000 {
		t.Errorf("chunk sizes %v, covered %d", sizes, covered)
	}
}

// A failed chunk fails alone: the others of the same sweep are answered.
func TestCMSFailedChunkAffectsOnlyItsAgents(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 30})
	c := newClient(t, sim, func(cfg *cec.Config) { cfg.RequestTimeout = 2 * time.Second })
	m := newCMS(t, sim, c, nil)
	sim.Inject(cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultHTTPStatus, Status: 503, Count: 1})
	chunks, _ := m.Plan(sim.Agents(), 10)
	results := cec.Sweep(context.Background(), chunks, 1, m.QueryAgentCalls)
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			if !errors.Is(r.Err, cec.ErrUpstream) || r.Answer != nil || len(r.Chunk.Agents) != 10 {
				t.Errorf("failed chunk: %v %+v", r.Err, r.Chunk)
			}
			continue
		}
		if len(r.Answer.Agents) != 10 {
			t.Errorf("answered chunk observed %d of 10", len(r.Answer.Agents))
		}
	}
	if failed != 1 {
		t.Fatalf("%d chunks failed, want 1", failed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, r := range cec.Sweep(ctx, chunks, 1, m.QueryAgentCalls) {
		if !errors.Is(r.Err, context.Canceled) {
			t.Fatalf("sweep after cancel: %v", r.Err)
		}
	}
}

func TestCMSNotLicensedOrMissingInterfaceIsNotSupported(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5, CMS: cecsim.CMS{NoTotalAgentState: true}})
	c := newClient(t, sim, nil)
	m := newCMS(t, sim, c, nil)
	ctx := context.Background()
	_, err := m.TotalAgentState(ctx, 1)
	var e *cec.Error
	if !errors.Is(err, cec.ErrNotSupported) || !errors.As(err, &e) || e.HTTPStatus != 404 || cec.Retryable(err) {
		t.Fatalf("CTI without totalagentstate: %v", err)
	}
	if _, err := m.QueryAgentCalls(ctx, cec.Chunk{VDN: 1, Agents: []int{1001}}); err != nil {
		t.Fatal(err)
	}
	sim.SetCMSLicensed(false)
	for _, call := range []func() error{
		func() error { _, err := m.QueryAgentCalls(ctx, cec.Chunk{VDN: 1, Agents: []int{1001}}); return err },
		func() error { _, err := m.QueryAgentStates(ctx, cec.Chunk{VDN: 1, Agents: []int{1001}}); return err },
	} {
		err := call()
		if !errors.Is(err, cec.ErrNotSupported) || !errors.As(err, &e) || e.Code != "0100003" {
			t.Fatalf("unlicensed CMS: %v", err)
		}
	}
	sim.SetCMSLicensed(true)
	if _, err := m.QueryAgentCalls(ctx, cec.Chunk{VDN: 1, Agents: []int{1001}}); err != nil {
		t.Fatalf("licence back: %v", err)
	}
}

// The vendor's sample answers for an agent nobody asked about, and an
// agent outside the chunk's VDN is left out: neither may be read as an
// observation of the chunk.
func TestCMSAnswersAreKeyedByAgentIDAndLeftOutAgentsAreNotObserved(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 20, AgentsPerVDN: 10, LooseTypes: true, CMS: cecsim.CMS{AnswerUnasked: true}})
	c := newClient(t, sim, nil)
	m := newCMS(t, sim, c, nil)
	if _, err := sim.StartCall(1015); err != nil {
		t.Fatal(err)
	}
	// 1011-1015 belong to VDN 2 but are asked about in VDN 1.
	ch := cec.Chunk{VDN: 1, Agents: []int{1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015}}
	a, err := m.QueryAgentCalls(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.NotObserved, []int{1011, 1012, 1013, 1014, 1015}) || len(a.Agents) != 3 || a.Ignored != 1 {
		t.Fatalf("observed %+v, not observed %v, ignored %d", a.Agents, a.NotObserved, a.Ignored)
	}
	if _, ok := a.Agent(1016); ok {
		t.Fatal("the unasked agent was taken into the answer")
	}
	st, err := m.QueryAgentStates(context.Background(), ch)
	if err != nil || len(st.NotObserved) != 5 || st.Ignored != 1 {
		t.Fatalf("states: %+v %v", st, err)
	}
	v, err := m.TotalAgentState(context.Background(), 2)
	if err != nil || len(v.Agents) != 10 || v.Agents[0].WorkNo != 1011 {
		t.Fatalf("totalagentstate of VDN 2: %+v %v", v, err)
	}
}

func TestCMSAgentStateFollowsCallsAndSignIn(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5})
	c := newClient(t, sim, nil)
	m := newCMS(t, sim, c, nil)
	ctx := context.Background()
	state := func() cec.AgentState {
		t.Helper()
		a, err := m.QueryAgentStates(ctx, cec.Chunk{VDN: 1, Agents: []int{1002}})
		if err != nil {
			t.Fatal(err)
		}
		s, ok := a.Agent(1002)
		if !ok {
			t.Fatal("agent 1002 not observed")
		}
		return s
	}
	if s := state(); s.State != cec.AgentIdle || s.SignedInAt.IsZero() {
		t.Fatalf("signed in without calls: %+v", s)
	}
	id, _ := sim.StartCall(1002)
	if s := state(); s.State != cec.AgentAnswering || s.PrevState != cec.AgentIdle || s.InState > 5*time.Second {
		t.Fatalf("ringing: %+v", s)
	}
	if err := sim.SetCallStatus(1002, id, cecsim.CallTalking); err != nil {
		t.Fatal(err)
	}
	if s := state(); s.State != cec.AgentTalking || s.PrevState != cec.AgentAnswering {
		t.Fatalf("talking: %+v", s)
	}
	if err := sim.SignOut(1002); err != nil {
		t.Fatal(err)
	}
	if s := state(); s.State != cec.AgentNotSignedIn || !s.SignedInAt.IsZero() {
		t.Fatalf("signed out: %+v", s)
	}
}

// CMS data trails the gateway by the configured lag: a call appears in a
// sweep no earlier than lag after it started, and not at all while the lag
// is long.
func TestCMSLagDelaysWhatASweepSees(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5, CMS: cecsim.CMS{Lag: time.Hour}})
	c := newClient(t, sim, nil)
	m := newCMS(t, sim, c, nil)
	ch := cec.Chunk{VDN: 1, Agents: []int{1003}}
	calls := func() []string {
		a, err := m.QueryAgentCalls(context.Background(), ch)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := a.Agent(1003)
		if !ok {
			t.Fatal("not observed")
		}
		return got.CallIDs()
	}
	id, _ := sim.StartCall(1003)
	if got := calls(); len(got) != 0 {
		t.Fatalf("a call visible through an hour of lag: %v", got)
	}
	const lag = 300 * time.Millisecond
	sim.SetCMSLag(lag)
	started := sim.Truth(0)[len(sim.Truth(0))-1].At
	testwait.For(t, 5*time.Second, "the call reaches CMS", func() bool { return slices.Equal(calls(), []string{id}) })
	if seen := time.Since(started); seen < lag {
		t.Fatalf("seen %s after it started, before the %s lag", seen, lag)
	}
}

// CMS requests take the tenant's budget and report to the observer under
// bounded endpoint names.
func TestCMSRequestsShareTheBudgetAndTheObserver(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 12})
	lim := &countingLimiter{}
	obs := &outcomeObserver{}
	c := newClient(t, sim, func(cfg *cec.Config) { cfg.Limiter = lim; cfg.Observer = obs })
	m := newCMS(t, sim, c, func(cfg *cec.CMSConfig) { cfg.SignedHeaders = []string{"host", "content-type", "content-length"} })
	results := sweepCalls(t, m, sim.Agents(), 5)
	for _, r := range results {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if _, err := m.TotalAgentState(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	sim.Inject(cecsim.Fault{Endpoint: "agentstatusinfobyagentids", Kind: cecsim.FaultVendorCode, Code: "0100003", Count: 1})
	_, _ = m.QueryAgentStates(context.Background(), cec.Chunk{VDN: 1, Agents: []int{1001}})
	if n := lim.n.Load(); n != 5 {
		t.Errorf("budget waited %d times, want 5 (3 chunks, totalagentstate, agentstatusinfobyagentids)", n)
	}
	if obs.get("queryagentcalls/ok") != 3 || obs.get("totalagentstate/ok") != 1 || obs.get("agentstatusinfobyagentids/not_supported") != 1 {
		t.Errorf("observer saw %v", obs.n)
	}
}

// BenchmarkCMSQueryAgentCalls3000 measures one 3,000-agent queryagentcalls
// through the client (sign, send, decode, key by agentId) against a bare
// HTTP client posting the same signed request and reading the answer
// without decoding it, in the same run.
func BenchmarkCMSQueryAgentCalls3000(b *testing.B) {
	sim := startSim(b, cecsim.Config{Agents: 3000})
	for wn := 1001; wn < 4001; wn += 3 {
		if _, err := sim.StartCall(wn); err != nil {
			b.Fatal(err)
		}
	}
	c := newClient(b, sim, nil)
	m := newCMS(b, sim, c, nil)
	chunks, _ := m.Plan(sim.Agents(), cec.MaxCallsAgents)
	if len(chunks) != 1 {
		b.Fatalf("%d chunks", len(chunks))
	}
	ch := chunks[0]
	b.Run("client", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			a, err := m.QueryAgentCalls(context.Background(), ch)
			if err != nil || len(a.Agents) != 3000 {
				b.Fatal(err)
			}
		}
	})
	b.Run("bare", func(b *testing.B) {
		signer, _ := cec.NewC2Signer("cms-ak", "cms-sk", nil, cec.TimestampSeconds)
		body, _ := json.Marshal(map[string]any{"ccId": 1, "vdn": 1, "agentIds": ch.Agents})
		u, _ := url.Parse(sim.URL() + "/rest/cmsapp/v1/openapi/agentgroup/queryagentcalls")
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequest("POST", u.String(), bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json; charset=UTF-8")
			req.Header.Set("Authorization", signer.Sign("POST", u.EscapedPath(), "", map[string]string{"host": u.Host}, body, time.Now()))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || n == 0 {
				b.Fatal(resp.Status)
			}
		}
	})
}
