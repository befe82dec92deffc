package cec

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

const gwBase = "/agentgateway/resource"

const epAllCallInfo = "allcallinfoEx"

// Poll cadence: the vendor asks for a re-poll 200–500 ms after an empty
// answer, and immediately after an event so queued events drain quickly.
const repollDelay = 200 * time.Millisecond

// SessionConfig configures one signed-in CC-Gateway agent session.
type SessionConfig struct {
	AgentID  int    // the monitoring agent's work number
	Password Secret // the agent's sign-in password
	PhoneNum string // softphone number bound at sign-in
	// LoginEx signs in with loginex (CCS only: no media server, no
	// licence) instead of login. Tenants that do not offer it refuse it.
	LoginEx bool

	// OnEvent receives every event from the agent's queue, in order, on the
	// Run goroutine. It must not block for long: the poll is the heartbeat.
	OnEvent func(AgentEvent)
	// OnState receives state transitions. It may be called from query
	// goroutines as well as from Run.
	OnState func(SessionState)
	// MayForce, if set, is asked before a forcelogin takes the agent over
	// from another sign-in. A bridge whose lease is unconfirmed (NATS away)
	// keeps polling, but must not push a successor's session out; the
	// sign-in then fails with ErrSignedInElsewhere and is retried.
	MayForce func() bool

	Logger *slog.Logger // nil means the client's logger
}

// Session is a CC-Gateway sign-in kept alive by Run. Its query methods are
// safe for concurrent use and always send the current GUID.
type Session struct {
	c     *Client
	cfg   SessionConfig
	log   *slog.Logger
	idStr string

	running atomic.Bool

	mu          sync.Mutex
	state       SessionState
	gen         uint64 // sign-in generation; stale responses cannot touch a newer session
	guid        string
	prevGUID    string
	cancelPoll  context.CancelFunc
	readyCh     chan struct{}
	readyClosed bool
}

// NewSession prepares a session for cfg.AgentID. Nothing happens on the
// wire until Run.
func (c *Client) NewSession(cfg SessionConfig) *Session {
	lg := cfg.Logger
	if lg == nil {
		lg = c.log
	}
	c.secrets.add(cfg.Password.Reveal())
	return &Session{
		c: c, cfg: cfg, log: lg.With(slog.Int("agent", cfg.AgentID)),
		idStr: strconv.Itoa(cfg.AgentID), readyCh: make(chan struct{}),
	}
}

// AgentID returns the session's agent work number.
func (s *Session) AgentID() int { return s.cfg.AgentID }

// State returns the current state.
func (s *Session) State() SessionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Ready reports whether the session is signed in right now.
func (s *Session) Ready() bool { return s.State() == Ready }

// WaitReady blocks until the session is signed in or ctx ends.
func (s *Session) WaitReady(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.state == Ready {
			s.mu.Unlock()
			return nil
		}
		ch := s.readyCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return &Error{Endpoint: "session", Message: "waiting for sign-in: " + ctx.Err().Error(), Err: ErrSessionNotReady}
		}
	}
}

// setState changes state and notifies OnState outside the lock.
func (s *Session) setState(st SessionState) {
	s.mu.Lock()
	changed := s.setStateLocked(st)
	s.mu.Unlock()
	if changed {
		s.notify(st)
	}
}

func (s *Session) setStateLocked(st SessionState) bool {
	if s.state == st {
		return false
	}
	s.state = st
	if st == Ready {
		if !s.readyClosed {
			close(s.readyCh)
			s.readyClosed = true
		}
	} else if s.readyClosed {
		s.readyCh = make(chan struct{})
		s.readyClosed = false
	}
	return true
}

func (s *Session) notify(st SessionState) {
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "cec session state", slog.String("state", st.String()))
	if s.cfg.OnState != nil {
		s.cfg.OnState(st)
	}
}

// current returns the GUID to use now.
func (s *Session) current() (guid string, gen uint64, st SessionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.guid, s.gen, s.state
}

// markLost ends generation gen if it is still the live one: the poll loop
// stops and Run signs in again.
func (s *Session) markLost(gen uint64) {
	s.mu.Lock()
	if s.gen != gen || s.state != Ready {
		s.mu.Unlock()
		return
	}
	s.setStateLocked(Lost)
	cancel := s.cancelPoll
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.notify(Lost)
}

// adoptGUID takes a rotated GUID from a Set-GUID header on any answer.
func (s *Session) adoptGUID(gen uint64, h http.Header) {
	vals := h.Values("Set-GUID")
	if len(vals) == 0 {
		return
	}
	g := parseSetGUID(vals[len(vals)-1])
	if g == "" {
		return
	}
	s.c.secrets.addRotating(g)
	s.mu.Lock()
	defer s.mu.Unlock()
	// A late answer may still carry the GUID we just moved away from.
	if s.gen != gen || g == s.guid || g == s.prevGUID {
		return
	}
	s.prevGUID, s.guid = s.guid, g
}

// parseSetGUID extracts the GUID from "JSESSIONID=<guid>[; attrs]".
func parseSetGUID(v string) string {
	if i := strings.Index(strings.ToUpper(v), "JSESSIONID="); i >= 0 {
		v = v[i+len("JSESSIONID="):]
	}
	if i := strings.IndexAny(v, "; ,"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

// Run signs in, then long-polls the agent's events until ctx ends, signing
// in again whenever the gateway drops the session. On ctx end it signs out
// and returns nil.
func (s *Session) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("cec: session: Run already active")
	}
	defer s.running.Store(false)
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(200*time.Millisecond),
		backoff.WithMaxInterval(15*time.Second),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0),
	)
	for {
		s.setState(SigningIn)
		guid, err := s.signIn(ctx)
		if ctx.Err() != nil {
			s.finish(guid)
			return nil
		}
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "cec sign-in failed", errAttr(err))
			s.setState(Lost)
			if !sleepCtx(ctx, bo.NextBackOff()) {
				s.finish("")
				return nil
			}
			continue
		}
		bo.Reset()
		pctx, cancel := context.WithCancel(ctx)
		s.mu.Lock()
		s.gen++
		gen := s.gen
		s.guid, s.prevGUID, s.cancelPoll = guid, "", cancel
		s.setStateLocked(Ready)
		s.mu.Unlock()
		s.notify(Ready)

		s.pollLoop(pctx, gen)
		cancel()
		if ctx.Err() != nil {
			cur, _, _ := s.current()
			s.finish(cur)
			return nil
		}
		s.markLost(gen)
		if !sleepCtx(ctx, bo.NextBackOff()) {
			s.finish("")
			return nil
		}
	}
}

// finish signs out (best effort, on a short detached deadline because the
// caller's context is already over) and records SignedOut.
func (s *Session) finish(guid string) {
	if guid != "" {
		ctx, cancel := context.WithTimeout(context.Background(), min(s.c.cfg.RequestTimeout, 5*time.Second))
		_, _, err := s.gwCall(ctx, "logout", http.MethodDelete, "/onlineagent/"+s.idStr+"/logout", guid, 0, nil, 0)
		cancel()
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelInfo, "cec sign-out failed", errAttr(err))
		}
	}
	// Release the connections this session's polls and queries leave in
	// the pool. A spare one the transport dialed for a cancelled poll
	// would otherwise stay open and never carry a request, which holds up
	// a gateway (or test server) shutting down gracefully for seconds.
	s.c.CloseIdleConnections()
	s.mu.Lock()
	s.gen++
	s.guid, s.prevGUID, s.cancelPoll = "", "", nil
	changed := s.setStateLocked(SignedOut)
	s.mu.Unlock()
	if changed {
		s.notify(SignedOut)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pollLoop long-polls until the session is lost or pctx ends.
func (s *Session) pollLoop(pctx context.Context, gen uint64) {
	ep := "agentevent"
	path := "/agentevent/" + s.idStr
	fails := 0
	for pctx.Err() == nil {
		guid, cur, _ := s.current()
		if cur != gen {
			return
		}
		env, _, err := s.gwCall(pctx, ep, http.MethodGet, path, guid, gen, nil, s.c.cfg.LongPollTimeout)
		if pctx.Err() != nil {
			return
		}
		if err == nil {
			ev, ok, derr := decodeEvent(env.Event)
			if derr == nil {
				fails = 0
				if ok {
					if s.cfg.OnEvent != nil {
						s.cfg.OnEvent(ev)
					}
					continue
				}
				sleepCtx(pctx, repollDelay)
				continue
			}
			err = &Error{Endpoint: ep, Message: "undecodable event", Err: ErrBadResponse}
		}
		if errors.Is(err, ErrSessionLost) {
			if now, _, _ := s.current(); now != guid {
				continue // a rotation overtook this poll; retry with the new GUID
			}
			s.log.LogAttrs(pctx, slog.LevelInfo, "cec session lost", errAttr(err))
			return
		}
		// Transient: keep trying at a modest pace. If it lasts two minutes
		// the gateway signs us out and the next answer says so.
		fails++
		delay := min(repollDelay*time.Duration(1<<min(fails, 5)), 5*time.Second)
		var ce *Error
		if errors.As(err, &ce) && ce.RetryAfter > delay {
			delay = ce.RetryAfter
		}
		sleepCtx(pctx, delay)
	}
}
