package probe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec"
)

func itoa(n int) string { return strconv.Itoa(n) }

func (p *Probe) notSignedIn() []Row {
	return []Row{{Status: StatusSkip, Answered: "not asked: the monitoring agent is not signed in"}}
}

func checkSignIn(ctx context.Context, p *Probe) []Row {
	m := p.tc.Monitors[0]
	newSession := func(loginEx bool) *cec.Session {
		return p.client.NewSession(cec.SessionConfig{AgentID: m.AgentID, Password: cec.Secret(m.Password.Reveal()),
			PhoneNum: m.Phone, LoginEx: loginEx, Logger: p.opts.Logger})
	}
	s := newSession(true)
	si, err := s.SignInOnce(ctx)
	var answered []string
	loginEx := err == nil
	if err != nil && !hasCode(err, "100-002", "100-004") && ctx.Err() == nil {
		// Not offered here: sign in the way the bridge does.
		answered = append(answered, "loginex refused ("+p.describe(err)+")")
		s = newSession(false)
		si, err = s.SignInOnce(ctx)
	}
	p.replay.LoginEx = &loginEx
	bridge := fmt.Sprintf("signs in as agent %d with login (busy, so no customer call reaches it), forcelogin when it is signed in already, and uses the GUID from Set-GUID", m.AgentID)
	if err != nil {
		row := Row{Status: StatusFail, Answered: strings.Join(append(answered, p.describe(err)), "; "), Bridge: bridge}
		switch {
		case hasCode(err, "100-002"):
			row.Bridge = "would take the session over with forcelogin; the probe never does: stop the bridge polling this tenant (or sign the agent out) and probe again"
		case hasCode(err, "100-004"):
			row.Bridge = fmt.Sprintf("cannot sign in: check the password of monitor %d", m.AgentID)
		}
		return []Row{row}
	}
	p.session, p.signedInAt = s, time.Now()
	answered = append(answered, si.Endpoint+" accepted; Set-GUID: "+si.SetGUIDForm)
	return []Row{{Status: StatusOK, Answered: strings.Join(answered, "; "), Bridge: bridge}}
}

// hasCode reports whether err carries one of the vendor codes.
func hasCode(err error, codes ...string) bool {
	var e *cec.Error
	return errors.As(err, &e) && slices.Contains(codes, e.Code)
}

// poll polls once and notes a GUID rotation.
func (p *Probe) poll(ctx context.Context) (cec.Poll, error) {
	r, err := p.session.PollOnce(ctx)
	switch {
	case err != nil || p.rotatedAfter != 0:
	case r.Rotated:
		p.rotatedAfter = time.Since(p.signedInAt)
	default:
		p.plainPollAt = time.Since(p.signedInAt)
	}
	return r, err
}

func checkEventPoll(ctx context.Context, p *Probe) []Row {
	if p.session == nil {
		return p.notSignedIn()
	}
	var drained []string
	for range 20 {
		r, err := p.poll(ctx)
		if err != nil {
			return []Row{{Status: StatusFail, Answered: p.describe(err),
				Bridge: "cannot keep its session alive: the event poll is its heartbeat"}}
		}
		if r.Event != nil {
			drained = append(drained, r.Event.Type)
			continue
		}
		p.replay.EmptyPoll = r.Empty
		p.replay.LongPollHold = max(r.Held.Round(10*time.Millisecond), 10*time.Millisecond).String()
		answered := "empty poll: " + map[string]string{"absent": "no event member", "null": "event null", "{}": "event {}"}[r.Empty]
		if len(drained) > 0 {
			answered += fmt.Sprintf("; %d queued event(s) first (%s)", len(drained), strings.Join(drained, ", "))
		}
		return []Row{{Status: StatusOK, Answered: answered,
			Bridge: "reads it as no event and polls again 200 ms later; the poll keeps its session alive",
			Timing: "held " + r.Held.Round(10*time.Millisecond).String()}}
	}
	return []Row{{Status: StatusWarn, Answered: fmt.Sprintf("20 events and no empty poll (%s ...)", strings.Join(drained[:3], ", ")),
		Bridge: "polls at once after each event; the shape of an empty poll is still unknown"}}
}

func checkGUID(ctx context.Context, p *Probe) []Row {
	if p.session == nil {
		return p.notSignedIn()
	}
	for p.rotatedAfter == 0 && time.Since(p.signedInAt) < p.opts.GUIDWatch && ctx.Err() == nil {
		if _, err := p.poll(ctx); err != nil {
			return []Row{{Status: StatusFail, Answered: "polling for a new GUID: " + p.describe(err),
				Bridge: "loses its session when the GUID changes"}}
		}
	}
	if p.rotatedAfter == 0 {
		p.replay.AuthMode = "static"
		answered := "no new GUID during the probe (static, or rotating more slowly: --slow watches 70s)"
		if p.opts.GUIDWatch > 0 {
			answered = fmt.Sprintf("no new GUID within %s of polling (static authentication)", p.opts.GUIDWatch)
		}
		return []Row{{Status: StatusOK, Answered: answered,
			Bridge: "keeps the sign-in GUID; adopts a new one whenever Set-GUID brings one"}}
	}
	p.replay.AuthMode = "dynamic"
	// The rotation period lies between the last poll that brought no new
	// GUID and the one that did: the lower bound replays safely.
	p.replay.GUIDInterval = max(p.plainPollAt.Round(10*time.Millisecond), 10*time.Millisecond).String()
	row := Row{Status: StatusOK, Answered: "dynamic: a new GUID came in Set-GUID on a poll",
		Bridge: "adopts each new GUID at once; queries in flight with the old one are retried",
		Timing: "after " + p.rotatedAfter.Round(10*time.Millisecond).String()}
	if _, err := p.session.AllCallInfo(ctx, p.session.AgentID()); err != nil && (p.idleCode == "" || !hasCode(err, p.idleCode)) {
		row.Status = StatusFail
		row.Answered += "; a query with the new GUID: " + p.describe(err)
	} else {
		row.Answered += "; queries with it work"
	}
	return []Row{row}
}

func checkSignOut(ctx context.Context, p *Probe) []Row {
	if p.session == nil {
		return p.notSignedIn()
	}
	err := p.session.SignOut(ctx)
	p.session = nil
	if err != nil {
		return []Row{{Status: StatusWarn, Answered: p.describe(err),
			Bridge: "signs out on shutdown; the gateway signs an agent out by itself two minutes after its last poll"}}
	}
	return []Row{{Status: StatusOK, Answered: "signed out", Bridge: "signs out on shutdown"}}
}
