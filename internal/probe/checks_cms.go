package probe

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// c2Variant is one way to sign CMS requests: public sources disagree on
// the signed headers and the timestamp precision.
type c2Variant struct {
	headers   []string
	timestamp string
}

var c2Variants = []c2Variant{
	{[]string{"host"}, configs.CMSTimestampSeconds},
	{[]string{"host"}, configs.CMSTimestampMillis},
	{[]string{"content-length", "content-type", "host"}, configs.CMSTimestampSeconds},
	{[]string{"content-length", "content-type", "host"}, configs.CMSTimestampMillis},
}

// checkCMS asks CC-CMS, for a tenant with a cms block, for the calls and
// states of a chunk of the roster: whether it accepts the signature (and,
// if it refuses the configured variant, which one it accepts), whether
// this host may ask at all, and which agents are in a call (the gateway
// checks then ask about one of them).
func checkCMS(ctx context.Context, p *Probe) []Row {
	c := p.tc.CMS
	if c == nil {
		return []Row{{Status: StatusSkip, Answered: "CMS not configured for this tenant",
			Bridge: "polls calls per agent over the gateway; add a cms block to sweep the whole roster every second"}}
	}
	if len(p.roster) == 0 {
		return []Row{{Status: StatusSkip, Answered: "not asked: no roster to ask about",
			Bridge: "sweeps the roster once queryAgentInfo answers"}}
	}
	agents := p.roster[:min(len(p.roster), cec.MaxCallsAgents)]
	configured := c2Variant{c.SignedHeaders, c.Timestamp}
	variants := []c2Variant{configured}
	for _, v := range c2Variants {
		if !slices.Equal(v.headers, configured.headers) || v.timestamp != configured.timestamp {
			variants = append(variants, v)
		}
	}
	var firstErr error
	for i, v := range variants {
		m, answer, err := p.askCMS(ctx, v, agents)
		if i == 0 {
			firstErr = err
		}
		if errors.Is(err, cec.ErrSignatureRefused) {
			continue // try the next variant
		}
		if refusesClient(err) {
			// Refused before the signature was looked at: no variant known.
			p.replay.CMS = &cecsim.ReplayCMS{RefusedClient: true}
			return []Row{p.cmsRefused(err)}
		}
		// Past the signature check: the replay accepts this variant only.
		p.replay.CMS = &cecsim.ReplayCMS{SignedHeaders: v.headers, Timestamp: v.timestamp}
		if err != nil {
			p.replay.CMS.NotLicensed = hasCode(err, "0100003")
			return []Row{p.cmsRefused(err)}
		}
		p.replay.CMS.AnswerUnasked = answer.Ignored > 0
		rows := []Row{p.cmsAnswered(answer, len(agents))}
		if i > 0 {
			rows[0].Status = StatusFix
			rows[0].Answered = fmt.Sprintf("the configured signature was refused (%s); signing %s with %s timestamps is accepted. ", p.describe(firstErr), strings.Join(v.headers, ";"), v.timestamp) + rows[0].Answered
			rows[0].Suggest = []Suggestion{{Key: "cms.signed_headers", Value: v.headers}, {Key: "cms.timestamp", Value: v.timestamp}}
		}
		rows = append(rows, p.cmsStates(ctx, m, agents))
		return rows
	}
	p.replay.CMS = &cecsim.ReplayCMS{Refused: true}
	return []Row{{Status: StatusWarn, Answered: "CMS refused every signature variant (" + p.describe(firstErr) + ")",
		Bridge: "sweeps nothing: every agent is polled one by one. CMS refused the signature: check the AK/SK pair and this host's clock (the token check shows the vendor's)"}}
}

// askCMS signs with variant v and asks for the calls of agents (one chunk).
func (p *Probe) askCMS(ctx context.Context, v c2Variant, agents []int) (*cec.CMS, *cec.CallsAnswer, error) {
	c := *p.tc.CMS
	c.SignedHeaders, c.Timestamp = v.headers, v.timestamp
	m, err := app.NewCMS(p.client, &c)
	if err != nil {
		return nil, nil, err
	}
	chunks, _ := m.Plan(agents, cec.MaxCallsAgents)
	if len(chunks) == 0 {
		return m, nil, fmt.Errorf("probe: no agent of the roster is in a configured VDN")
	}
	answer, err := m.QueryAgentCalls(ctx, chunks[0])
	return m, answer, err
}

// cmsRefused reports a CMS that will not answer. The bridge still works
// (every agent polled one by one), so it is a warning, not a failure.
func (p *Probe) cmsRefused(err error) Row {
	row := Row{Status: StatusWarn, Answered: p.describe(err), Bridge: "sweeps nothing: every agent is polled one by one"}
	switch {
	case errors.Is(err, cec.ErrNotSupported):
		row.Bridge += " (CMS is not licensed for the tenant, or its CTI is older than V3R8: ask the vendor's operations)"
	case refusesClient(err):
		row.Bridge += " (CMS refuses this host: ask the vendor's operations to put its address on the tenant's IP whitelist)"
	case errors.Is(err, cec.ErrUnauthorized):
		row.Bridge += " (the AK may not use the monitoring interfaces: ask the vendor's operations to grant it)"
	default:
		row.Bridge = "retries; agents a sweep cannot cover are polled one by one"
	}
	return row
}

// refusesClient reports whether CMS refused the client itself (HTTP 403),
// as it does a host outside the tenant's IP whitelist, rather than its
// signature (401) or the AK's permission (code 0101003).
func refusesClient(err error) bool {
	var e *cec.Error
	return errors.As(err, &e) && e.HTTPStatus == http.StatusForbidden && errors.Is(err, cec.ErrUnauthorized)
}

func (p *Probe) cmsAnswered(a *cec.CallsAnswer, asked int) Row {
	p.cmsCalls = map[int][]string{}
	for _, ac := range a.Agents {
		if len(ac.Calls) > 0 {
			p.cmsCalls[ac.WorkNo] = ac.CallIDs()
		}
	}
	row := Row{Status: StatusOK,
		Answered: fmt.Sprintf("queryagentcalls answered for %d of %d agents asked (%d in a call, %d not observed, %d answers about agents not asked)",
			len(a.Agents), len(a.Chunk.Agents), len(p.cmsCalls), len(a.NotObserved), a.Ignored),
		Bridge: "sweeps the roster every intervals.sweep; an agent an answer leaves out is polled one by one",
		Timing: fmt.Sprintf("%d agents in %s", asked, a.Received.Sub(a.Sent).Round(1e6))}
	if len(a.NotObserved) > 0 {
		row.Status = StatusWarn
		row.Bridge += "; check which VDN the agents left out are in (cms.vdns)"
	}
	return row
}

// cmsStates asks for the agent states of the same agents.
func (p *Probe) cmsStates(ctx context.Context, m *cec.CMS, agents []int) Row {
	chunks, _ := m.Plan(agents, cec.MaxStatesAgents)
	s, err := m.QueryAgentStates(ctx, chunks[0])
	if err != nil {
		return Row{Check: "cms: states", Status: StatusWarn, Answered: "agentstatusinfobyagentids: " + p.describe(err),
			Bridge: "publishes no agent states; the calls sweep goes on"}
	}
	byState := map[string]int{}
	for _, as := range s.Agents {
		byState[as.State.String()]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(byState)) {
		parts = append(parts, fmt.Sprintf("%d %s", byState[k], k))
	}
	return Row{Check: "cms: states", Status: StatusOK,
		Answered: fmt.Sprintf("agentstatusinfobyagentids answered for %d agents: %s", len(s.Agents), strings.Join(parts, ", ")),
		Bridge:   "publishes each agent's state on cec.evt." + p.tc.Name + ".agent.<workNo>.state"}
}

// checkCMSAgrees compares, for the agent the gateway found in a call, the
// call IDs CMS named with the gateway's: the two must name calls alike for
// a sweep and a poll to feed one history.
func checkCMSAgrees(ctx context.Context, p *Probe) []Row {
	switch {
	case p.tc.CMS == nil:
		return []Row{{Status: StatusSkip, Answered: "CMS not configured for this tenant", Bridge: "-"}}
	case p.cmsCalls == nil:
		return []Row{{Status: StatusSkip, Answered: "not compared: CMS did not answer", Bridge: "-"}}
	case p.inCallAgent == 0:
		return []Row{{Status: StatusSkip, Answered: "not compared: no agent in a call found", Bridge: "-"}}
	}
	cmsIDs, ok := p.cmsCalls[p.inCallAgent]
	if ok && slices.Equal(sortedCopy(cmsIDs), sortedCopy(p.inCallIDs)) {
		return []Row{{Status: StatusOK,
			Answered: fmt.Sprintf("agent %d: CMS and the gateway name the same call IDs", p.inCallAgent),
			Bridge:   "feeds sweeps and polls into one history of the agent's calls"}}
	}
	return []Row{{Status: StatusFix,
		Answered: fmt.Sprintf("agent %d: CMS named %v, the gateway %v (CMS may trail the gateway)", p.inCallAgent, cmsIDs, p.inCallIDs),
		Bridge:   "takes an agent over from polling only when a sweep agrees with what was published; with confirm each change a sweep finds is checked with the gateway first",
		Suggest:  []Suggestion{{Key: "cms.confirm", Value: true}}}}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
