package main

import (
	"context"
	"time"

	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// The outage run takes CMS away twice through the simulator's control
// API: first for good as far as the bridge can tell (the licence withdrawn:
// 0100003), then as a failing service (HTTP 503 on every CMS request). Per
// agent polling must take over within one sweep interval, nothing false
// may be published, and the sweep must take its agents back when CMS
// returns: after the bridge's retry delay (30 sweeps) for the licence, at
// the next sweep for the failures.

// OutageWindow is what one CMS outage showed. Times are seconds from the
// outage's start unless the name says otherwise; -1 means it did not
// happen.
type OutageWindow struct {
	Kind   string  `json:"kind"`
	At     float64 `json:"at_seconds"` // into the run
	Length float64 `json:"length_seconds"`
	// FirstSweep is the first queryagentcalls request CMS refused;
	// Takeover the first per-agent poll after that refusal was answered.
	FirstSweep float64 `json:"first_refused_sweep_s"`
	Takeover   float64 `json:"takeover_s"`
	// RefusedSweeps counts the sweeps CMS refused before the first per
	// agent poll: 1 is a takeover within one sweep.
	RefusedSweeps     int     `json:"sweeps_refused_before_takeover"`
	PollsPerSecBefore float64 `json:"polls_per_sec_before"` // allcallinfoEx, the 5 s before
	PollsPerSecDuring float64 `json:"polls_per_sec_during"`
	// BridgeState is the sweep state the bridge's metrics showed during
	// the outage, first at StateShown.
	BridgeState string  `json:"bridge_state"`
	StateShown  float64 `json:"state_shown_s"`
	SweptBefore int     `json:"swept_before"`
	// AgentsPolled counts the distinct agents polled one by one from the
	// start until the sweep was back; AllPolled is when that count reached
	// SweptBefore.
	AgentsPolled int     `json:"agents_polled"`
	AllPolled    float64 `json:"all_polled_s"`
	// Resumed: the sweep reported 99 % of SweptBefore again, ResumedAfter
	// seconds after the outage ended (FirstSweepAfter: its first request
	// after the end).
	Resumed          bool    `json:"resumed"`
	ResumedAfter     float64 `json:"resumed_after_end_s"`
	FirstSweepAfter  float64 `json:"first_sweep_after_end_s"`
	PollsPerSecAfter float64 `json:"polls_per_sec_after"` // allcallinfoEx, from the sweep's return for 5 s (at most until the next outage)
}

// outageWindowTimes is when an outage began and ended, as driven.
type outageWindowTimes struct {
	kind        string
	from, to    time.Time
	sweptBefore int
}

// outageRunLength is how long the outage run must last for its timeline:
// a fifth of the phase to settle, the licence outage and the bridge's
// retry delay (30 sweeps), a pause, the failure outage and its recovery,
// a margin, and the tail the scoring leaves out.
func outageRunLength(o Options, so SweepOptions) time.Duration {
	return o.Duration/5 + max(so.Outage, 30*so.Interval) + outagePause(so) + so.Outage + 15*so.Interval + o.Tail
}

// outagePause is the time between the sweep's return and the next outage.
func outagePause(so SweepOptions) time.Duration { return min(5*time.Second, 10*so.Interval) }

// driveOutages runs the outage timeline and returns its windows.
func driveOutages(ctx context.Context, o Options, so SweepOptions, sim *cecsim.Sim, sampler *sweepSampler, agents int, start time.Time, note func(string)) []outageWindowTimes {
	if !atFraction(ctx, start, o.Duration, 0.2) {
		return nil
	}
	if !waitSweep(ctx, sampler, start.Add(o.Duration/2), sweepHolds(agents*99/100)) {
		note("the sweep did not cover 99 % of the agents before the first outage")
	}
	var out []outageWindowTimes
	for i, w := range []struct {
		kind    string
		off, on func()
	}{
		{"CMS not licensed (0100003)", func() { sim.SetCMSLicensed(false) }, func() { sim.SetCMSLicensed(true) }},
		{"HTTP 503 on every CMS request", func() {
			for _, e := range []string{"queryagentcalls", "agentstatusinfobyagentids"} {
				sim.Inject(cecsim.Fault{Endpoint: e, Kind: cecsim.FaultHTTPStatus, Status: 503})
			}
		}, sim.ClearFaults},
	} {
		if i > 0 && !pause(ctx, outagePause(so)) {
			return out
		}
		before := sampler.latest().swept
		from := time.Now()
		w.off()
		note(w.kind + ": CMS gone")
		ok := pause(ctx, so.Outage)
		w.on()
		if !ok {
			return out
		}
		to := time.Now()
		note(w.kind + ": CMS back")
		out = append(out, outageWindowTimes{kind: w.kind, from: from, to: to, sweptBefore: before})
		deadline := from.Add(max(so.Outage, 30*so.Interval) + 5*so.Interval + 5*time.Second)
		if !waitSweep(ctx, sampler, deadline, sweepHolds(before*99/100)) {
			note(w.kind + ": the sweep did not take its agents back in time")
		}
	}
	return out
}

// outageFigures measures each window of a run that began at start from
// the request records and the metrics samples.
func outageFigures(start time.Time, windows []outageWindowTimes, rec *requestLog, sampler *sweepSampler, interval time.Duration) []OutageWindow {
	if len(windows) == 0 {
		return nil
	}
	polls, sweeps := rec.records()
	samples := sampler.all()
	secs := func(from, to time.Time) float64 { return to.Sub(from).Seconds() }
	pollRate := func(from, to time.Time) float64 {
		n := 0
		for _, p := range polls {
			if !p.at.Before(from) && p.at.Before(to) {
				n++
			}
		}
		return div(float64(n), secs(from, to))
	}
	var out []OutageWindow
	for i, w := range windows {
		f := OutageWindow{Kind: w.kind, At: secs(start, w.from), Length: secs(w.from, w.to), SweptBefore: w.sweptBefore,
			FirstSweep: -1, Takeover: -1, StateShown: -1, AllPolled: -1, ResumedAfter: -1, FirstSweepAfter: -1}
		f.PollsPerSecBefore = pollRate(w.from.Add(-5*time.Second), w.from)
		f.PollsPerSecDuring = pollRate(w.from, w.to)
		var takeover time.Time
		for _, s := range sweeps {
			if !s.From.Before(w.from) && s.From.Before(w.to) {
				f.FirstSweep = secs(w.from, s.From)
				for _, p := range polls {
					if p.at.After(s.To) {
						f.Takeover, takeover = secs(w.from, p.at), p.at
						break
					}
				}
				break
			}
		}
		f.RefusedSweeps = sweepRounds(sweeps, w.from, takeover, interval)
		for _, s := range sweeps {
			if !s.From.Before(w.to) {
				f.FirstSweepAfter = secs(w.to, s.From)
				break
			}
		}
		for _, s := range samples {
			if s.at.Before(w.from) || s.at.After(w.to) {
				continue
			}
			if s.state != "" && s.state != poller.SweepOK {
				f.BridgeState, f.StateShown = s.state, secs(w.from, s.at)
				break
			}
		}
		back := w.to.Add(time.Hour)
		for _, s := range samples {
			if s.at.After(w.to) && sweepHolds(w.sweptBefore*99/100)(s) {
				f.Resumed, f.ResumedAfter, back = true, secs(w.to, s.at), s.at
				break
			}
		}
		if f.Resumed {
			until := back.Add(5 * time.Second)
			if i+1 < len(windows) && windows[i+1].from.Before(until) {
				until = windows[i+1].from
			}
			f.PollsPerSecAfter = pollRate(back, until)
		}
		polled := map[int]bool{}
		for _, p := range polls {
			if p.at.Before(w.from) || p.at.After(back) {
				continue
			}
			polled[p.workNo] = true
			if len(polled) == w.sweptBefore && f.AllPolled < 0 {
				f.AllPolled = secs(w.from, p.at)
			}
		}
		f.AgentsPolled = len(polled)
		out = append(out, f)
	}
	return out
}

// sweepRounds counts the sweeps that began in [from, to).
func sweepRounds(requests []span, from, to time.Time, interval time.Duration) int {
	n := 0
	for _, s := range sweepSpans(requests, interval) {
		if !s.From.Before(from) && s.From.Before(to) {
			n++
		}
	}
	return n
}

// sweepSpans groups queryagentcalls requests (in the order they began)
// into sweeps, each from its first request to its last answer. A sweep
// sends its next chunk as soon as one is answered; the next sweep waits
// an interval (or a backoff) after the last answer: a request that begins
// a tenth of an interval after every earlier one was answered begins a
// sweep.
func sweepSpans(requests []span, interval time.Duration) []span {
	var out []span
	for _, r := range requests {
		if n := len(out); n > 0 && r.From.Sub(out[n-1].To) < interval/10 {
			out[n-1].To = later(out[n-1].To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// sweepTiming summarises the sweeps of a run: how many, the time between
// the starts of two in a row, and how long each took.
func sweepTiming(requests []span, interval time.Duration) (n int, period, length Latency) {
	sweeps := sweepSpans(requests, interval)
	var gaps, lengths []time.Duration
	for i, s := range sweeps {
		lengths = append(lengths, s.To.Sub(s.From))
		if i > 0 {
			gaps = append(gaps, s.From.Sub(sweeps[i-1].From))
		}
	}
	return len(sweeps), summarise(gaps), summarise(lengths)
}
