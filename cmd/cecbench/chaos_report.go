package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// ChaosResult is every figure of a chaos drill.
type ChaosResult struct {
	Started     time.Time       `json:"started"`
	WindowStart time.Time       `json:"window_start"` // the steps' and spans' time zero
	Options     Options         `json:"options"`
	Chaos       ChaosOptions    `json:"chaos"`
	Machine     Machine         `json:"machine"`
	WallSec     float64         `json:"wall_seconds"`
	Steps       []ChaosStep     `json:"steps"`
	Bridges     []BridgeProcess `json:"bridges"`
	Integrity   Integrity       `json:"integrity"`
	Stale       StaleWrites     `json:"stale_writes"`
	False       int             `json:"false_events"`
	FalseSample []string        `json:"false_sample,omitempty"`
	Final       int             `json:"final_state_mismatches"`
	FinalSample []string        `json:"final_sample,omitempty"`
	Converged   bool            `json:"converged_before_stop"`
	Detection   Score           `json:"detection"`
	Blind       BlindTime       `json:"blind_time"`
	Excused     []span          `json:"excused"`
	Lost        []lostSpan      `json:"lost_with_a_killed_process"`
	Outage      span            `json:"nats_outage"`
	DiskFull    DiskFull        `json:"disk_full"`
	Spool       SpoolCapture    `json:"outage_kill_spool"`
	Heartbeats  int             `json:"heartbeats"`
	OtherBridge int             `json:"other_bridge_events"`
	LogCounts   map[string]int  `json:"bridge_log_warnings_and_errors"`
	Targets     []Target        `json:"targets"`
	Notes       []string        `json:"notes"`
}

// DiskFull is the full-disk episode during the outage.
type DiskFull struct {
	Instance   string  `json:"instance,omitempty"`
	From       float64 `json:"from_s"`
	To         float64 `json:"to_s"`
	LimitBytes int64   `json:"first_limit_bytes"`
	Torn       bool    `json:"torn_write"`
	Skipped    string  `json:"skipped,omitempty"`
}

// score reads the run's records and the history into res.
func (d *drill) score(res *ChaosResult, h *history, stopAt time.Time, converged bool) {
	res.Steps, res.Bridges, res.Spool, res.Converged, res.WindowStart = d.steps, d.bridges, d.capture, converged, d.start
	res.Outage, res.Heartbeats, res.OtherBridge = d.outage, len(h.Heartbeats), h.Other
	if !d.fill.from.IsZero() || d.fill.skipped != "" {
		res.DiskFull = DiskFull{Instance: d.fill.slot, LimitBytes: d.fill.limitBytes, Torn: d.fill.torn, Skipped: d.fill.skipped}
		if !d.fill.from.IsZero() {
			res.DiskFull.From, res.DiskFull.To = d.fill.from.Sub(d.start).Seconds(), d.fill.to.Sub(d.start).Seconds()
		}
	}
	truth := d.sim.Truth(0)
	tl := buildTimelines(d.world, truth)
	tol := d.finalTolerance()

	res.Integrity = checkIntegrity(h.Entity)
	fs := falseStates(tl, h.Entity)
	res.False, res.FalseSample = len(fs), fs[:min(len(fs), 12)]
	fm := finalMismatches(tl, h.Entity, stopAt, tol)
	res.Final, res.FinalSample = len(fm), fm[:min(len(fm), 12)]

	var polls []slotPoll
	for _, s := range d.slots {
		p, _ := s.front.records()
		for _, at := range p {
			polls = append(polls, slotPoll{at: at, slot: s.name})
		}
	}
	slices.SortFunc(polls, func(a, b slotPoll) int { return a.at.Compare(b.at) })

	// The bridges' logs: terms, lease acquisitions, warnings and errors.
	loggedBy := map[string]string{}
	res.LogCounts = map[string]int{}
	for _, b := range d.bridges {
		l, err := scanLog(b.Log)
		if err != nil {
			d.notes = append(d.notes, err.Error())
			continue
		}
		who := fmt.Sprintf("%s#%d (pid %d)", b.Slot, b.Gen, b.PID)
		for term := range l.Terms {
			loggedBy[term] = who
		}
		for k, n := range l.Counts {
			res.LogCounts[k] += n
		}
		if l.NotJSON > 0 {
			res.LogCounts["lines that are not JSON (a panic?)"] += l.NotJSON
		}
		for _, at := range l.Acquired {
			ts := TermStart{Slot: b.Slot, PID: b.PID, At: at.Sub(d.start).Seconds(), FirstPoll: -1}
			for _, p := range polls {
				if p.slot == b.Slot && !p.at.Before(at) {
					ts.FirstPoll = p.at.Sub(at).Seconds()
					break
				}
			}
			res.Blind.TermStarts = append(res.Blind.TermStarts, ts)
		}
	}

	res.Stale = staleByTerm(h, loggedBy, d.pauses)

	d.blindTimes(&res.Blind, polls, stopAt)
	res.Excused, res.Lost = d.excused(polls)

	signedIn := map[int]bool{}
	for wn, a := range d.world.agents {
		signedIn[wn] = a.SignedIn
	}
	o := d.o
	res.Detection = score(scoreInput{
		Truth: truth, Events: h.Entity, SignedIn: signedIn,
		WindowStart: d.start, WindowEnd: stopAt.Add(-tol),
		CallsInterval: o.Interval, IdleInterval: o.Idle, ActiveWindow: o.ActiveWindow,
		RosterInterval: o.Roster, PhonesInterval: o.Phones,
		Excused: res.Excused, Lost: res.Lost, Outage: d.outage, Unstored: d.unstored,
	})
	res.Notes = append(slices.Clone(d.notes),
		fmt.Sprintf("lease.ttl %s; a restarted instance must poll within %s of its start (or of NATS's return)", d.co.LeaseTTL, blindTarget),
		fmt.Sprintf("truth after %s excluded (the last %s before the bridges stopped)", stopAt.Add(-tol).Format("15:04:05.000"), tol),
		"recall counts changes that lasted two intervals outside the excused spans (a dead or paused holder, a full disk); the NATS outage is not excused",
		"changes the holder killed in the outage saw and spooled count as seen (read from its spool before its restart), though fencing keeps them out of the stream",
	)
	if !res.Stale.ByTerm {
		res.Notes = append(res.Notes, "Nats-Msg-Id carries no lease term (<event-id>.<term>), so no write can be attributed to a term")
	}
	res.Targets = chaosTargets(d, res)
}

// blindTimes measures the restarts, the pauses and the gaps from the
// simulator's records of call-ID polls.
func (d *drill) blindTimes(b *BlindTime, polls []slotPoll, stopAt time.Time) {
	for _, r := range d.restarts {
		from := r.restarted
		if r.inOutage && d.killOutage.To.After(from) {
			from = d.killOutage.To
		}
		rb := RestartBlind{Slot: r.slot, KilledAt: r.killed.Sub(d.start).Seconds(), Down: r.restarted.Sub(r.killed).Seconds(), InOutage: r.inOutage}
		p, ok := firstPollAfter(polls, from)
		if !ok || p.at.After(stopAt) {
			p = slotPoll{at: stopAt, slot: "nobody"}
		}
		rb.Blind, rb.SinceKill, rb.FirstBy = p.at.Sub(from).Seconds(), p.at.Sub(r.killed).Seconds(), p.slot
		b.Restarts = append(b.Restarts, rb)
		b.MaxRestart = max(b.MaxRestart, rb.Blind)
	}
	g, at := longestGap(polls, d.start, stopAt)
	b.LongestGap, b.LongestGapAt = g.Seconds(), at.Sub(d.start).Seconds()
	if !d.outage.isZero() {
		g, _ := longestGap(polls, d.outage.From, d.outage.To)
		b.OutageGap = g.Seconds()
	}
	for _, p := range d.pauses {
		if !p.takeover.IsZero() {
			b.PauseTakeovers = append(b.PauseTakeovers, p.takeover.Sub(p.stopped).Seconds())
		}
	}
}

// excused lists the spans in which nobody can be asked to see a change,
// and the detections a killed process took with it.
func (d *drill) excused(polls []slotPoll) ([]span, []lostSpan) {
	var ex []span
	var lost []lostSpan
	for _, r := range d.restarts {
		if !r.inOutage {
			ex = append(ex, span{From: r.killed, To: r.restarted.Add(blindTarget), Reason: "holder killed, until its restart plus " + blindTarget.String()})
			continue
		}
		resume := r.restarted
		if d.killOutage.To.After(resume) {
			resume = d.killOutage.To
		}
		resume = resume.Add(blindTarget)
		ex = append(ex, span{From: r.killed, To: resume, Reason: "holder killed in the NATS outage: no lease can be taken before NATS is back"})
		// What it saw before it died and had not spooled was in memory.
		var memEnd time.Time
		for _, p := range polls {
			if p.slot == r.slot && p.at.Before(r.killed) {
				memEnd = p.at
			}
		}
		for _, e := range d.unstored {
			if e.ByPoll.Before(memEnd) {
				memEnd = e.ByPoll
			}
		}
		// A change that began up to one idle interval before the outage
		// may have been seen only during it, by the holder that died.
		if from := d.killOutage.From.Add(-d.o.Idle - time.Second); memEnd.After(from) {
			lost = append(lost, lostSpan{span: span{From: from, To: memEnd, Reason: "seen by the holder killed in the outage, held in its memory"}, Until: resume})
		}
	}
	for _, p := range d.pauses {
		ttl := d.co.LeaseTTL
		ex = append(ex, span{From: p.stopped, To: p.stopped.Add(ttl + ttl/3 + blindTarget), Reason: "holder paused: its lease outlives it by design"})
	}
	if !d.fill.from.IsZero() {
		ex = append(ex, span{From: d.fill.from, To: d.fill.to, Reason: "the spool's disk full: records refused by design"})
	}
	slices.SortFunc(ex, func(a, b span) int { return a.From.Compare(b.From) })
	return ex, lost
}

// chaosTargets are the targets for the drill.
func chaosTargets(d *drill, r *ChaosResult) []Target {
	var t []Target
	add := func(name, want string, got float64, met bool) {
		t = append(t, Target{Name: name, Scope: "target", Want: want, Got: got, Met: met})
	}
	zero := func(name string, n int) { add(name, "= 0", float64(n), n == 0) }
	in := r.Integrity
	zero("duplicate event ids", in.DuplicateIDs)
	zero("seq holes", in.Holes)
	zero("seq repeats", in.Repeats)
	zero("forks (one subject and seq, two bodies)", in.Forks)
	zero("broken prev_id links", in.BrokenLinks)
	// Without a term in the message ids nothing can be attributed: not met.
	stale := func(name string, n int) { add(name, "= 0", float64(n), r.Stale.ByTerm && n == 0) }
	stale("stale writes (a term's message after a later term's)", r.Stale.Stale)
	if len(d.pauses) > 0 {
		stale("writes of the paused holder's term after the takeover", r.Stale.PausedWrites)
	}
	zero("false events (a state never true in its window)", r.False)
	zero("final-state mismatches", r.Final)
	var long, seen, olong, oseen int
	for _, g := range r.Detection.Groups {
		long += g.Long
		seen += g.LongSeen
		olong += g.OutageLong
		oseen += g.OutageLongSeen
	}
	add("recall %, changes lasting >= 2 intervals", "= 100", 100*ratio(float64(seen), float64(long)), long > 0 && seen == long)
	if !r.Outage.isZero() {
		add("recall %, such changes begun and ended in the NATS outage", "= 100", 100*ratio(float64(oseen), float64(olong)), olong > 0 && oseen == olong)
	}
	if len(r.Blind.Restarts) > 0 {
		add("blind time per restart, max s", fmt.Sprintf("<= %.0f", blindTarget.Seconds()), r.Blind.MaxRestart, r.Blind.MaxRestart <= blindTarget.Seconds())
	}
	return t
}

// printChaos writes the drill's table.
func printChaos(w io.Writer, r *ChaosResult) {
	o, c := r.Options, r.Chaos
	fmt.Fprintf(w, "\ncecbench  scenario=%s  seed=%d agents=%d calls/agent-h=%.0f mean-call=%s  interval=%s idle=%s roster=%s phones=%s\n",
		o.Scenario, o.Seed, o.Agents, o.CallsPerHour, o.MeanCall, o.Interval, o.Idle, o.Roster, o.Phones)
	fmt.Fprintf(w, "chaos     2 bridges, lease.ttl %s; %d kills (max downtime %s), NATS outage %s (and %s with a kill in it), disk full %s, pause %v; buffer %d events\n",
		c.LeaseTTL, c.Kills, c.MaxDowntime, c.Outage, c.KillOutage, c.DiskFull, c.Pause, c.BufferEvents)
	fmt.Fprintf(w, "machine   %d CPUs, %s %s/%s; wall %.0fs; %d bridge processes; time 0 is %s\n\n", r.Machine.CPUs, r.Machine.GoVersion, r.Machine.OS, r.Machine.Arch, r.WallSec, len(r.Bridges), r.WindowStart.Format("15:04:05.000"))

	fmt.Fprintln(w, "STEPS")
	for _, s := range r.Steps {
		who := ""
		if s.Slot != "" {
			who = fmt.Sprintf(" %s pid %d", s.Slot, s.PID)
		}
		fmt.Fprintf(w, "  %7.1fs  %-10s%s  %s\n", s.At, s.Kind, who, s.Detail)
	}

	in := r.Integrity
	fmt.Fprintf(w, "\nHISTORY  %d entity events on %d subjects (+%d heartbeats, %d other bridge events)\n", in.Events, in.Subjects, r.Heartbeats, r.OtherBridge)
	fmt.Fprintf(w, "  duplicate ids %d (identical %d), forks %d, seq holes %d, seq repeats %d, broken prev_id links %d, ids not from subject+seq %d\n",
		in.DuplicateIDs, in.Identical, in.Forks, in.Holes, in.Repeats, in.BrokenLinks, in.BadIDs)
	for _, s := range in.Samples {
		fmt.Fprintln(w, "    ", s)
	}
	st := r.Stale
	if st.ByTerm {
		fmt.Fprintf(w, "  stale writes (by the term in Nats-Msg-Id): %d over %d terms\n", st.Stale, len(st.Terms))
		for _, ti := range st.Terms {
			fmt.Fprintf(w, "     term %s: %d messages, %d stale; writer %s %s\n", ti.Term, ti.Messages, ti.Stale, ti.Writer, ti.LoggedBy)
		}
	} else {
		fmt.Fprintln(w, "  Nats-Msg-Id carries no lease term: stale writes cannot be attributed")
	}
	fmt.Fprintf(w, "  after the SIGSTOP takeover: %d messages of the paused holder's term %v\n", st.PausedWrites, st.PausedTerms)
	for _, s := range st.Samples {
		fmt.Fprintln(w, "    ", s)
	}
	fmt.Fprintf(w, "  false events %d, final-state mismatches %d (stream converged before the stop: %v)\n", r.False, r.Final, r.Converged)
	for _, s := range r.FalseSample {
		fmt.Fprintln(w, "     false:", s)
	}
	for _, s := range r.FinalSample {
		fmt.Fprintln(w, "     final:", s)
	}

	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DETECTION\tchanges\tseen\tlong\tlong seen\texcused\toutage long\toutage seen\tmissed other\tlatency p50/p95/max ms\t")
	for _, name := range groups {
		g := r.Detection.Groups[name]
		fmt.Fprintf(tw, "%s (%s)\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", name, g.Interval, g.Changes, g.Seen, g.Long, g.LongSeen,
			g.LongExcused, g.OutageLong, g.OutageLongSeen, g.MissedOther, latencyShort(g.Latency))
	}
	tw.Flush()
	ds := r.Detection
	fmt.Fprintf(w, "  score.go: false facts %d, duplicate facts %d; seen only in the killed holder's spool %d (it held %d records, %d torn)\n",
		ds.False, ds.Duplicates, ds.UnstoredSeen, r.Spool.Records, r.Spool.Torn)
	for _, name := range groups {
		for _, m := range ds.Groups[name].LongMissedSample {
			fmt.Fprintln(w, "     missed, lasted 2 intervals:", m)
		}
	}
	rel := func(t time.Time) float64 { return t.Sub(r.WindowStart).Seconds() }
	for _, x := range r.Excused {
		fmt.Fprintf(w, "  excused %6.1fs..%6.1fs  %s\n", rel(x.From), rel(x.To), x.Reason)
	}
	for _, x := range r.Lost {
		fmt.Fprintf(w, "  excused %6.1fs..%6.1fs  changes begun here and gone within two intervals of %.1fs: %s\n", rel(x.From), rel(x.To), rel(x.Until), x.Reason)
	}

	b := r.Blind
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "BLIND TIME\tkilled at s\tdown s\tin outage\tblind s\tkill to poll s\tfirst poll by\t")
	for _, rb := range b.Restarts {
		fmt.Fprintf(tw, "restart of %s\t%.1f\t%.1f\t%v\t%.2f\t%.2f\t%s\t\n", rb.Slot, rb.KilledAt, rb.Down, rb.InOutage, rb.Blind, rb.SinceKill, rb.FirstBy)
	}
	tw.Flush()
	fmt.Fprintf(w, "  longest gap without a call-ID poll %.1fs (at %.1fs); in the NATS outage %.1fs; SIGSTOP to takeover %v s\n",
		b.LongestGap, b.LongestGapAt, b.OutageGap, roundAll(b.PauseTakeovers))
	var starts []string
	for _, ts := range b.TermStarts {
		starts = append(starts, fmt.Sprintf("%s@%.1fs:%.2fs", ts.Slot, ts.At, ts.FirstPoll))
	}
	fmt.Fprintf(w, "  lease acquired -> first poll: %s\n", strings.Join(starts, " "))
	if r.DiskFull.Skipped != "" {
		fmt.Fprintf(w, "  disk full: skipped (%s)\n", r.DiskFull.Skipped)
	} else if r.DiskFull.Instance != "" {
		fmt.Fprintf(w, "  disk full on %s %.1fs..%.1fs: torn write %v\n", r.DiskFull.Instance, r.DiskFull.From, r.DiskFull.To, r.DiskFull.Torn)
	}

	if len(r.LogCounts) > 0 {
		fmt.Fprintln(w, "\nBRIDGE LOGS (warnings and errors, all processes)")
		keys := slices.Collect(maps.Keys(r.LogCounts))
		slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(r.LogCounts[b], r.LogCounts[a]), cmp.Compare(a, b)) })
		for _, k := range keys[:min(len(keys), 20)] {
			fmt.Fprintf(w, "  %6d  %s\n", r.LogCounts[k], k)
		}
	}

	printTargets(w, r.Targets, r.Notes)
}

func latencyShort(l Latency) string {
	if l.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f/%.0f/%.0f", l.P50, l.P95, l.Max)
}

func roundAll(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(int(x*10+0.5)) / 10
	}
	return out
}
