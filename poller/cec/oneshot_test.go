package cec_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// The one-shot operations sign in once (loginex when asked), never take
// a signed-in agent over, poll once telling how an empty poll looked, and
// sign out.
func TestOneShotSignInPollSignOut(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 4, EmptyPollMode: cecsim.EmptyPollNull})
	c := newClient(t, sim, nil)
	ctx := context.Background()
	s := c.NewSession(cec.SessionConfig{AgentID: 1001, Password: "agent-pass", LoginEx: true})
	si, err := s.SignInOnce(ctx)
	if err != nil || si.Endpoint != "loginex" || si.SetGUIDForm != "JSESSIONID=<uuid>.AgentGateway0" {
		t.Fatalf("SignInOnce: %+v %v", si, err)
	}
	if counter(sim, "loginex") != 1 || counter(sim, "login") != 0 {
		t.Errorf("counters %v", sim.Counters())
	}
	// A second sign-in of the same agent is refused, not forced.
	other := c.NewSession(cec.SessionConfig{AgentID: 1001, Password: "agent-pass"})
	var ce *cec.Error
	if _, err := other.SignInOnce(ctx); !errors.As(err, &ce) || ce.Code != "100-002" || counter(sim, "forcelogin") != 0 {
		t.Fatalf("second sign-in: %v, forcelogin %d", err, counter(sim, "forcelogin"))
	}
	var empty *cec.Poll
	for range 10 {
		p, err := s.PollOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p.Event == nil {
			empty = &p
			break
		}
	}
	if empty == nil || empty.Empty != "null" || empty.Held < 40*time.Millisecond {
		t.Fatalf("empty poll %+v", empty)
	}
	if err := s.SignOut(ctx); err != nil || sim.SessionSignedIn(1001) || s.State() != cec.SignedOut {
		t.Fatalf("SignOut: %v, signed in %v, state %v", err, sim.SessionSignedIn(1001), s.State())
	}
}

// A gateway without loginex answers 404; the session says so.
func TestLoginExRefused(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 2, NoLoginEx: true})
	s := newClient(t, sim, nil).NewSession(cec.SessionConfig{AgentID: 1001, Password: "agent-pass", LoginEx: true})
	var ce *cec.Error
	if _, err := s.SignInOnce(context.Background()); !errors.As(err, &ce) || ce.HTTPStatus != 404 {
		t.Fatalf("err %v", err)
	}
}

// facts is a FactObserver.
type facts struct {
	outcomeObserver
	mu     sync.Mutex
	codes  []string
	grants []cec.TokenGrant
}

func (f *facts) ObserveCode(ep, code string) {
	f.mu.Lock()
	f.codes = append(f.codes, ep+"/"+code)
	f.mu.Unlock()
}

func (f *facts) ObserveToken(g cec.TokenGrant) {
	f.mu.Lock()
	f.grants = append(f.grants, g)
	f.mu.Unlock()
}

// An Observer that is also a FactObserver hears of every token granted
// and every unexplained code; a configured no-call code is an answer (ok),
// not a vendor error.
func TestFactsReachTheObserver(t *testing.T) {
	for _, configured := range []bool{false, true} {
		sim := startSim(t, cecsim.Config{Agents: 4, NoCallMode: cecsim.NoCallError, NoCallCode: "900-002", TokenMaxLifetime: 2 * time.Minute})
		f := &facts{}
		c := newClient(t, sim, func(cfg *cec.Config) {
			cfg.Observer = f
			if configured {
				cfg.NoCallCodes = []string{"900-002"}
			}
		})
		if _, err := c.QueryAgentInfo(context.Background()); err != nil {
			t.Fatal(err)
		}
		s := runSession(t, c, cec.SessionConfig{})
		_, err := s.AllCallInfo(context.Background(), 1002)
		f.mu.Lock()
		grants, codes := f.grants, f.codes
		f.mu.Unlock()
		if len(grants) != 1 || grants[0].Granted != 2*time.Minute || grants[0].Requested != 10*time.Minute || len(grants[0].Fields) != 7 {
			t.Errorf("grants %+v", grants)
		}
		if skew, ok := grants[0].Skew(); !ok || skew.Abs() > 2*time.Second {
			t.Errorf("skew %v %v", skew, ok)
		}
		switch {
		case configured && (err != nil || len(codes) != 0 || f.get("allcallinfoEx/ok") != 1):
			t.Errorf("configured: err %v, codes %v, ok %d", err, codes, f.get("allcallinfoEx/ok"))
		case !configured && (!errors.Is(err, cec.ErrVendor) || len(codes) != 1 || codes[0] != "allcallinfoEx/900-002"):
			t.Errorf("unconfigured: err %v, codes %v", err, codes)
		}
	}
}
