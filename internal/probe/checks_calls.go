package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec"
)

// rawCallAnswer reads the retcode and result member of the latest
// allcallinfoEx answer in check.
func (p *Probe) rawCallAnswer(check string) (retcode string, result json.RawMessage, ok bool) {
	ex, found := p.rec.last(check, "allcallinfoEx")
	if !found || ex.Response == nil {
		return "", nil, false
	}
	var env struct {
		Retcode any             `json:"retcode"`
		Result  json.RawMessage `json:"result"`
	}
	if json.Unmarshal(ex.Response.Body, &env) != nil {
		return "", nil, false
	}
	return fmt.Sprint(env.Retcode), env.Result, true
}

func checkIdleAgent(ctx context.Context, p *Probe) []Row {
	if p.session == nil {
		return p.notSignedIn()
	}
	rows := p.idleAgent(ctx)
	p.replay.NoCall, p.replay.NoCallCode = p.idleKind, p.idleCode
	return rows
}

func (p *Probe) idleAgent(ctx context.Context) []Row {
	const check = "calls: idle agent"
	wn := p.session.AgentID()
	who := fmt.Sprintf("agent %d (the monitor, signed in busy): ", wn)
	ids, err := p.session.AllCallInfo(ctx, wn)
	if err == nil {
		if len(ids) > 0 {
			return []Row{{Status: StatusWarn, Answered: who + fmt.Sprintf("%d call(s)", len(ids)),
				Bridge: "polls it like any agent; use a monitoring agent that takes no calls, so that its own answer shows what 'no call' looks like"}}
		}
		code, result, _ := p.rawCallAnswer(check)
		switch {
		case code != "0":
			p.idleKind, p.idleCode = "code", code
			return []Row{{Status: StatusOK, Answered: who + "code " + code,
				Bridge: "reads code " + code + " as no call (no_call_codes)"}}
		case len(result) == 0 || string(result) == "null":
			p.idleKind = "omit"
			return []Row{{Status: StatusOK, Answered: who + "retcode 0 without a result",
				Bridge: "reads it as no call"}}
		default:
			p.idleKind = "empty"
			return []Row{{Status: StatusOK, Answered: who + "retcode 0, result " + string(result),
				Bridge: "reads it as no call"}}
		}
	}
	var e *cec.Error
	if !errors.As(err, &e) || e.Code == "" {
		return []Row{{Status: StatusFail, Answered: who + p.describe(err),
			Bridge: "cannot ask about calls: every agent would show as not visible"}}
	}
	p.idleKind, p.idleCode = "code", e.Code
	switch {
	case errors.Is(err, cec.ErrSessionLost):
		return []Row{{Status: StatusFail, Answered: who + p.describe(err),
			Bridge: "reads code " + e.Code + " as a lost session and would sign in again and again; ask the vendor what it means here"}}
	case errors.Is(err, cec.ErrRateLimited):
		p.idleKind, p.idleCode = "", ""
		return []Row{{Status: StatusWarn, Answered: who + p.describe(err), Bridge: "backs off; probe again to see the idle answer"}}
	}
	codes := slices.Clone(p.tc.NoCallCodes)
	if !slices.Contains(codes, e.Code) {
		codes = append(codes, e.Code)
	}
	return []Row{{Status: StatusFix, Answered: who + p.describe(err),
		Bridge:  "as configured, marks every idle agent not visible and never reports an ended call; with the suggestion, reads code " + e.Code + " as no call",
		Suggest: []Suggestion{{Key: "no_call_codes", Value: codes}}}}
}

// scanSample picks up to n roster agents the first monitor covers,
// spread evenly, the monitor itself left out.
func (p *Probe) scanSample(n int) []int {
	// Agents CMS found in a call first: the gateway check needs one.
	var first []int
	for _, wn := range slices.Sorted(maps.Keys(p.cmsCalls)) {
		if len(first) < 3 && wn != p.tc.Monitors[0].AgentID && poller.MonitorFor(p.monitors, wn) == 0 {
			first = append(first, wn)
		}
	}
	if len(first) > 0 {
		rest := p.scanSample0(max(n-len(first), 0))
		for _, wn := range rest {
			if !slices.Contains(first, wn) {
				first = append(first, wn)
			}
		}
		return first
	}
	return p.scanSample0(n)
}

func (p *Probe) scanSample0(n int) []int {
	var pool []int
	for _, wn := range p.roster {
		if wn != p.tc.Monitors[0].AgentID && poller.MonitorFor(p.monitors, wn) == 0 {
			pool = append(pool, wn)
		}
	}
	if len(pool) <= n {
		return pool
	}
	out := make([]int, 0, n)
	for i := range n {
		out = append(out, pool[i*len(pool)/n])
	}
	return out
}

func checkScan(ctx context.Context, p *Probe) []Row {
	if p.session == nil {
		return p.notSignedIn()
	}
	sample := p.scanSample(p.opts.Scan)
	p.scannedAgents = sample
	inCall, noCall := 0, 0
	codes := map[string]int{}
	var failures []string
	calls := map[string]int{}
	for _, wn := range sample {
		ids, err := p.session.AllCallInfo(ctx, wn)
		var e *cec.Error
		switch {
		case err == nil && len(ids) > 0:
			inCall++
			calls[itoa(wn)] = len(ids)
			if p.inCallAgent == 0 {
				p.inCallAgent, p.inCallIDs = wn, ids
			}
		case err == nil:
			noCall++
		case errors.As(err, &e) && e.Code != "":
			codes[e.Code]++
		default:
			failures = append(failures, p.describe(err))
		}
	}
	for wn, ids := range p.cmsCalls { // in a call by CMS, not asked here
		if !slices.Contains(sample, wn) {
			calls[itoa(wn)] = len(ids)
		}
	}
	if len(calls) > 0 {
		p.replay.Calls = calls
	}
	parts := []string{fmt.Sprintf("asked %d agents: %d in a call, %d in none", len(sample), inCall, noCall)}
	row := Row{Status: StatusOK, Bridge: "publishes each agent's call IDs and their changes"}
	var strange []string
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		parts = append(parts, fmt.Sprintf("%d answered code %s", codes[c], c))
		if c != p.idleCode {
			strange = append(strange, c)
		}
	}
	if len(failures) > 0 {
		parts = append(parts, fmt.Sprintf("%d failed (%s)", len(failures), failures[0]))
		row.Status = StatusWarn
	}
	if len(strange) > 0 {
		row.Status = StatusWarn
		row.Bridge = "marks the agents answering code " + strings.Join(strange, ", ") +
			" not visible; if they belong to another VDN, give monitors[0].work_nos its own VDN's range and add a monitor for the other"
	} else if codes[p.idleCode] > 0 && !slices.Contains(p.tc.NoCallCodes, p.idleCode) {
		row.Bridge = "with no_call_codes as suggested above, reads the idle agents' code as no call"
	}
	row.Answered = strings.Join(parts, "; ")
	return []Row{row}
}

var callIDShape = regexp.MustCompile(`^\d{9,11}-\d+$`)

func checkInCall(_ context.Context, p *Probe) []Row {
	if p.session == nil {
		return p.notSignedIn()
	}
	if p.inCallAgent == 0 {
		return []Row{{Status: StatusWarn,
			Answered: fmt.Sprintf("no agent in a call among the %d asked", len(p.scannedAgents)),
			Bridge:   "the answer for an agent in a call is unverified: probe again at a busy time, or with a larger --scan"}}
	}
	shape := "shaped <epoch seconds>-<n> as documented"
	for _, id := range p.inCallIDs {
		if !callIDShape.MatchString(id) {
			shape = "not shaped <epoch seconds>-<n> (the bridge passes them on as they are)"
		}
	}
	return []Row{{Status: StatusOK,
		Answered: fmt.Sprintf("agent %d: %d call ID(s), %s", p.inCallAgent, len(p.inCallIDs), shape),
		Bridge:   fmt.Sprintf("publishes them on cec.evt.%s.agent.%d.calls", p.tc.Name, p.inCallAgent)}}
}

func checkOtherVDN(ctx context.Context, p *Probe) []Row {
	if p.session == nil {
		return p.notSignedIn()
	}
	other, mon := 0, 0
	for _, wn := range p.roster {
		if i := poller.MonitorFor(p.monitors, wn); i > 0 {
			other, mon = wn, i
			break
		}
	}
	if other == 0 {
		return []Row{{Status: StatusSkip, Answered: "not asked: one monitor covers every agent",
			Bridge: "asks about every agent through monitor " + itoa(p.tc.Monitors[0].AgentID) + "; agents of another VDN would answer like an unknown agent"}}
	}
	_, err := p.session.AllCallInfo(ctx, other)
	answered := fmt.Sprintf("agent %d (monitor %d's) asked through monitor %d: ", other, p.tc.Monitors[mon].AgentID, p.tc.Monitors[0].AgentID)
	if err == nil {
		return []Row{{Status: StatusOK, Answered: answered + "answered",
			Bridge: "asks through the monitor that covers the agent; this gateway answers across VDNs too"}}
	}
	return []Row{{Status: StatusOK, Answered: answered + p.describe(err),
		Bridge: "asks about each agent through the monitor whose work_nos cover it"}}
}

func checkUnknownAgent(ctx context.Context, p *Probe) []Row {
	if p.session == nil {
		return p.notSignedIn()
	}
	const check = "calls: unknown agent"
	wn := p.unknownWorkNo()
	ids, err := p.session.AllCallInfo(ctx, wn)
	who := fmt.Sprintf("work number %d (not in the roster): ", wn)
	bridge := "polls roster agents only, so it meets this answer only for an agent removed meanwhile"
	var e *cec.Error
	switch {
	case err == nil && len(ids) > 0:
		return []Row{{Status: StatusWarn, Answered: who + "holds calls", Bridge: bridge}}
	case err == nil:
		code, _, _ := p.rawCallAnswer(check)
		if code != "0" && code == p.idleCode {
			return []Row{{Status: StatusWarn, Answered: who + "code " + code + ", as an idle agent",
				Bridge: "cannot tell 'no such agent' from 'no call' with code " + code + " in no_call_codes: keep each monitor's work_nos to its own VDN"}}
		}
		return []Row{{Status: StatusOK, Answered: who + "answered as an agent in no call", Bridge: bridge}}
	case errors.As(err, &e) && e.Code != "":
		if e.Code == p.idleCode {
			return []Row{{Status: StatusWarn, Answered: who + p.describe(err) + ", as an idle agent",
				Bridge: "with code " + e.Code + " in no_call_codes it cannot tell 'no such agent' from 'no call': keep each monitor's work_nos to its own VDN"}}
		}
		return []Row{{Status: StatusOK, Answered: who + p.describe(err), Bridge: bridge + " (then: not visible)"}}
	}
	return []Row{{Status: StatusWarn, Answered: who + p.describe(err), Bridge: bridge}}
}

// unknownWorkNo is a valid work number that is not in the roster.
func (p *Probe) unknownWorkNo() int {
	if len(p.roster) == 0 {
		return 999999
	}
	for wn := p.roster[len(p.roster)-1] + 1; wn <= 999999; wn++ {
		if !slices.Contains(p.roster, wn) {
			return wn
		}
	}
	for wn := p.roster[0] - 1; wn >= 101; wn-- {
		if _, found := slices.BinarySearch(p.roster, wn); !found {
			return wn
		}
	}
	return 999999
}
