package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec"
)

// documentedTokenFields are the members of a tokenByAkSk answer as the
// vendor documents them.
var documentedTokenFields = []string{"AccessToken", "AppKey", "ApplyType", "CreateTime", "Expires", "Scope", "UserID"}

// skewTolerance is the clock difference the probe and the bridge accept
// before they say so: CreateTime has one-second precision, and signed
// requests (CMS) are refused when clocks drift far apart.
const skewTolerance = 30 * time.Second

func checkToken(ctx context.Context, p *Probe) []Row {
	tok, g, err := p.client.FetchToken(ctx, p.tc.TokenLifetime)
	if err != nil {
		row := Row{Status: failure(err), Answered: p.describe(err),
			Bridge: "cannot read the API Fabric: no roster, no phone states, no account lookups"}
		if errors.Is(err, cec.ErrUnauthorized) {
			row.Bridge += "; check app_key and app_secret"
		}
		// The client would try again for half a minute per query, and
		// then fail the same way: the queries that need a token are
		// not asked.
		p.noToken = row.Status == StatusFail
		return []Row{row}
	}
	p.scrub.addSecret(tok.Reveal())
	row := Row{Status: StatusOK}
	var parts []string
	switch {
	case g.Granted == 0:
		parts = append(parts, fmt.Sprintf("no lifetime in the answer (asked %s)", g.Requested))
		row.Bridge = fmt.Sprintf("trusts the %s asked for and renews at 80 %%", g.Requested)
	case g.Granted < g.Requested:
		parts = append(parts, fmt.Sprintf("granted %s of %s asked", g.Granted, g.Requested))
		row.Bridge = fmt.Sprintf("renews at 80 %% of the %s granted", g.Granted)
		row.Status = StatusWarn
		if g.Granted >= time.Minute {
			row.Suggest = []Suggestion{{Key: "token_lifetime", Value: g.Granted.String()}}
		}
		p.replay.TokenMax = g.Granted.String()
	default:
		parts = append(parts, fmt.Sprintf("granted the %s asked", g.Requested))
		row.Bridge = fmt.Sprintf("renews every %s (80 %% of its life)", (g.Requested * 8 / 10).Round(time.Second))
	}
	missing, extra := diffFields(documentedTokenFields, g.Fields)
	switch {
	case len(missing) == 0 && len(extra) == 0:
		parts = append(parts, "fields as documented")
	default:
		if len(missing) > 0 {
			parts = append(parts, "missing "+strings.Join(missing, ", "))
		}
		if len(extra) > 0 {
			parts = append(parts, "also "+strings.Join(extra, ", "))
		}
	}
	if skew, ok := g.Skew(); !ok {
		parts = append(parts, "no CreateTime, clock not compared")
	} else if skew.Abs() > skewTolerance {
		parts = append(parts, fmt.Sprintf("vendor clock %s %s ours", skew.Abs().Round(time.Second), aheadBehind(skew)))
		row.Status = worse(row.Status, StatusWarn)
		row.Bridge += "; fix this host's clock (NTP): signed CMS requests and event times depend on it"
	} else {
		parts = append(parts, "clocks agree")
	}
	row.Answered = strings.Join(parts, "; ")
	return []Row{row}
}

func aheadBehind(d time.Duration) string {
	if d > 0 {
		return "ahead of"
	}
	return "behind"
}

func diffFields(want, got []string) (missing, extra []string) {
	for _, f := range want {
		if !slices.Contains(got, f) {
			missing = append(missing, f)
		}
	}
	for _, f := range got {
		if !slices.Contains(want, f) {
			extra = append(extra, f)
		}
	}
	return missing, extra
}

// refusedToken reports how the API Fabric answered a token it must refuse,
// for the bad-token and expired-token checks.
func (p *Probe) refusedToken(err error, check, what string) Row {
	if err == nil {
		return Row{Status: StatusWarn, Answered: "accepted a " + what + " token",
			Bridge: "cannot tell a refused token from a good one here; it renews tokens on schedule"}
	}
	var e *cec.Error
	if !errors.As(err, &e) || e.HTTPStatus == 0 {
		return Row{Status: StatusWarn, Answered: p.describe(err), Bridge: "could not learn how a " + what + " token is answered"}
	}
	body := p.bodyText(check, "queryAgentInfo")
	row := Row{Answered: fmt.Sprintf("HTTP %d, body %s", e.HTTPStatus, clip(body, 120))}
	p.replay.ExpiredTokenStatus, p.replay.ExpiredTokenBody = e.HTTPStatus, body
	if errors.Is(err, cec.ErrUnauthorized) {
		row.Status = StatusOK
		row.Bridge = "takes it for a refused token: fetches a new one and asks again, once"
		return row
	}
	row.Status = StatusWarn
	row.Bridge = "does not take this for a refused token: API Fabric queries fail (entities not visible) until the token is renewed on schedule"
	return row
}

func checkBadToken(ctx context.Context, p *Probe) []Row {
	const made = "cecbridge-probe-invalid-token"
	return []Row{p.refusedToken(p.client.TryToken(ctx, cec.Secret(made)), "bad token", "made-up")}
}

func checkExpiredToken(ctx context.Context, p *Probe) []Row {
	if !p.opts.Slow {
		return []Row{{Status: StatusSkip, Answered: "not asked (--slow waits out a short token; the bad-token row shows how an invalid one is answered)",
			Bridge: "renews tokens at 80 % of their life, so it rarely meets an expired one"}}
	}
	tok, g, err := p.client.FetchToken(ctx, p.opts.SlowToken)
	if err != nil {
		return []Row{{Status: StatusWarn, Answered: p.describe(err), Bridge: "could not learn how an expired token is answered"}}
	}
	p.scrub.addSecret(tok.Reveal())
	life := g.Requested
	if g.Granted > 0 && g.Granted < life {
		life = g.Granted
	}
	wait := life + time.Second
	fmt.Fprintf(p.opts.Progress, " waiting %s for a token to expire ...", wait)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return []Row{{Status: StatusSkip, Answered: "interrupted while waiting for the token to expire"}}
	case <-t.C:
	}
	row := p.refusedToken(p.client.TryToken(ctx, tok), "expired token", "expired")
	row.Timing = "token of " + life.String() + " waited out"
	return []Row{row}
}

// withoutToken is the row of a query not asked because the token check
// got no token.
func withoutToken(bridge string) []Row {
	return []Row{{Status: StatusSkip, Answered: "not asked: no token (see the token row)", Bridge: bridge}}
}

func checkRoster(ctx context.Context, p *Probe) []Row {
	if p.noToken {
		return withoutToken("cannot read the roster without a token")
	}
	ai, err := p.client.QueryAgentInfo(ctx)
	if err != nil {
		return []Row{{Status: failure(err), Answered: p.describe(err),
			Bridge: "cannot read the roster: no softphone events, and no agent to poll calls for"}}
	}
	without := 0
	for _, a := range ai.Agents {
		p.roster = append(p.roster, a.WorkNo)
		if a.AccountCode == "" {
			without++
		}
	}
	slices.Sort(p.roster)
	p.roster = slices.Compact(p.roster)
	for _, a := range ai.Agents {
		if a.AccountCode != "" && (p.knownAccount == "" || a.WorkNo < p.accountAgent) {
			p.knownAccount, p.accountAgent = a.AccountCode, a.WorkNo
		}
	}
	if len(p.roster) == 0 {
		return []Row{{Status: StatusWarn, Answered: "no agents", Bridge: "has nothing to poll"}}
	}
	p.replay.Agents, p.replay.FirstWorkNo = len(p.roster), p.roster[0]
	covered := 0
	for _, wn := range p.roster {
		if poller.MonitorFor(p.monitors, wn) >= 0 {
			covered++
		}
	}
	row := Row{Status: StatusOK,
		Answered: fmt.Sprintf("%d agents (%d to %d), %d without a business account; SIP server %s:%d",
			len(p.roster), p.roster[0], p.roster[len(p.roster)-1], without, ai.SIPServerIP, ai.SIPServerPort),
		Bridge: fmt.Sprintf("tracks %d softphones; polls the calls of the %d agents its monitors cover", len(p.roster), covered)}
	if covered < len(p.roster) {
		row.Status = StatusWarn
		row.Bridge += fmt.Sprintf("; %d agents are covered by no monitor's work_nos and stay unpolled", len(p.roster)-covered)
	}
	return []Row{row}
}

func checkPhones(ctx context.Context, p *Probe) []Row {
	if p.noToken {
		return withoutToken("cannot read phone registration states without a token")
	}
	first, err := p.client.QueryPhonePage(ctx, 0, 100)
	if err != nil {
		return []Row{{Status: failure(err), Answered: p.describe(err), Bridge: "cannot read phone registration states"}}
	}
	pages := (first.Total + 99) / 100
	parts := []string{fmt.Sprintf("total %d, first page %d", first.Total, len(first.Phones))}
	row := Row{Status: StatusOK}
	if want := min(first.Total, 100); len(first.Phones) != want {
		row.Status = StatusWarn
		parts[0] += fmt.Sprintf(" (expected %d)", want)
	}
	if first.Total > 0 {
		if one, err := p.client.QueryPhonePage(ctx, 0, 0); err != nil {
			parts = append(parts, "limit 0: "+p.describe(err))
		} else {
			parts = append(parts, fmt.Sprintf("limit 0 gave %d (clamped to 1..100: %s)", len(one.Phones), yesNo(len(one.Phones) == 1)))
		}
	}
	if first.Total > 100 {
		if big, err := p.client.QueryPhonePage(ctx, 0, 1000); err == nil {
			parts = append(parts, fmt.Sprintf("limit 1000 gave %d", len(big.Phones)))
			if len(big.Phones) > 100 {
				row.Status = worse(row.Status, StatusWarn)
			}
		}
		if second, err := p.client.QueryPhonePage(ctx, 100, 100); err == nil {
			parts = append(parts, fmt.Sprintf("page 2 total %d", second.Total))
			if second.Total != first.Total {
				row.Status = worse(row.Status, StatusWarn)
			}
		}
	}
	shape := regServShape(first.RegServers)
	parts = append(parts, "registration server "+shape)
	p.replay.FlatRegServ = strings.HasPrefix(shape, "flat")
	row.Answered = strings.Join(parts, "; ")
	row.Bridge = fmt.Sprintf("walks %d page(s) of 100 every phones interval (%s); reads any registration-server shape", pages, p.tc.Intervals.Phones)
	return []Row{row}
}

func regServShape(rs []cec.RegServer) string {
	var kinds []string
	for _, r := range rs {
		k := map[string]string{"": "flat (regIPAddress in result)", "single": "nested (singleRegServ)",
			"node1": "nested (poolRegServ)", "node2": "nested (poolRegServ)"}[r.Pool]
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		return "absent"
	}
	return strings.Join(kinds, " and ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func checkAccount(ctx context.Context, p *Probe) []Row {
	if p.knownAccount == "" {
		return []Row{{Status: StatusSkip, Answered: "no agent of the roster has a business account to ask about",
			Bridge: "answers agent.by_account lookups live"}}
	}
	row := Row{Status: StatusOK, Bridge: "answers agent.by_account lookups live (cached 30 s); an unknown account answers 404"}
	a, err := p.client.QueryAgentByAccount(ctx, p.knownAccount)
	switch {
	case err != nil:
		row.Status = StatusWarn
		row.Answered = "known account (agent " + itoa(p.accountAgent) + "): " + p.describe(err)
	case a.WorkNo != p.accountAgent:
		row.Status = StatusWarn
		row.Answered = fmt.Sprintf("known account of agent %d answered agent %d", p.accountAgent, a.WorkNo)
	default:
		row.Answered = fmt.Sprintf("known account -> agent %d (type %d)", a.WorkNo, a.AgentType)
	}
	_, err = p.client.QueryAgentByAccount(ctx, "cecbridge-probe-no-such-account")
	switch {
	case errors.Is(err, cec.ErrNotFound):
		row.Answered += "; unknown account -> not found"
	case err == nil:
		row.Status = worse(row.Status, StatusWarn)
		row.Answered += "; unknown account -> an agent!"
	default:
		row.Status = worse(row.Status, StatusWarn)
		row.Answered += "; unknown account -> " + p.describe(err)
		row.Bridge = "answers agent.by_account lookups live; an unknown account answers 503, not 404"
	}
	return []Row{row}
}

func checkThrottling(_ context.Context, p *Probe) []Row {
	total, throttled := 0, 0
	var where []string
	for _, l := range p.rec.latency() {
		total += l.Requests
		if l.Throttled > 0 {
			throttled += l.Throttled
			where = append(where, fmt.Sprintf("%s x%d", l.Endpoint, l.Throttled))
		}
	}
	budget := "sends as fast as its schedules ask (no budget set)"
	if p.tc.Budget > 0 {
		budget = fmt.Sprintf("keeps to its budget of %g requests/s", p.tc.Budget)
	}
	if throttled == 0 {
		return []Row{{Status: StatusOK, Answered: "no throttling", Bridge: budget,
			Timing: fmt.Sprintf("%d requests", total)}}
	}
	return []Row{{Status: StatusWarn, Answered: fmt.Sprintf("throttled %d times: %s", throttled, strings.Join(where, ", ")),
		Bridge: "backs off when throttled and " + budget + "; set budget below the rate the tenant allows",
		Timing: fmt.Sprintf("%d requests", total)}}
}

// describe says what an error was, without secrets or personal data.
func (p *Probe) describe(err error) string {
	var e *cec.Error
	if errors.As(err, &e) {
		var parts []string
		if e.HTTPStatus != 0 && e.HTTPStatus != 200 {
			parts = append(parts, fmt.Sprintf("HTTP %d", e.HTTPStatus))
		}
		if e.Code != "" {
			parts = append(parts, "code "+e.Code)
		}
		if e.Message != "" {
			parts = append(parts, p.scrub.text(e.Message))
		}
		if len(parts) == 0 {
			parts = append(parts, strings.TrimPrefix(e.Err.Error(), "cec: "))
		}
		return strings.Join(parts, ", ")
	}
	return p.scrub.text(err.Error())
}

// bodyText is the scrubbed body of the latest answer from endpoint in
// check, as text.
func (p *Probe) bodyText(check, endpoint string) string {
	ex, ok := p.rec.last(check, endpoint)
	if !ok || ex.Response == nil || len(ex.Response.Body) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(ex.Response.Body, &s) == nil {
		return s
	}
	return string(ex.Response.Body)
}

func clip(s string, n int) string {
	if s == "" {
		return "(empty)"
	}
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// failure is the status of a check whose question went unanswered: a
// throttled question may be asked again later, anything else means the
// bridge cannot work either.
func failure(err error) Status {
	if errors.Is(err, cec.ErrRateLimited) {
		return StatusWarn
	}
	return StatusFail
}

func worse(a, b Status) Status {
	rank := []Status{StatusOK, StatusSkip, StatusWarn, StatusFix, StatusFail}
	if slices.Index(rank, b) > slices.Index(rank, a) {
		return b
	}
	return a
}
