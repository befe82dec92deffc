package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// observed is one bridge event as read from the stream, reduced to what the
// scoring needs.
type observed struct {
	Subject string
	Type    string
	Op      schemas.Op
	Seq     uint64
	WorkNo  int
	Phone   string
	// Before and After are the entity's state as a set of values: call IDs
	// for calls, "sip|account" for a softphone, the status code for a phone.
	Before, After []string
	ByPoll        time.Time
	Stored        time.Time // stream timestamp (zero if unknown)
	Size          int

	// What the chaos drill checks a history with: the CloudEvent id and
	// prev_id, the start of the detection window (zero for snapshots), and,
	// filled in by the reader, the Nats-Msg-Id, the stream sequence and a
	// digest of the stored body.
	ID, PrevID string
	AfterPoll  time.Time
	MsgID      string
	StreamSeq  uint64
	Digest     uint64
}

// decodeEvent turns one stored event body into an observed event. Bridge
// events (visibility, heartbeat) come back with ok == false.
func decodeEvent(subject string, body []byte, stored time.Time) (observed, bool, error) {
	var ev schemas.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return observed{}, false, fmt.Errorf("decode event on %s: %w", subject, err)
	}
	o := observed{Subject: subject, Type: ev.Type, Stored: stored, Size: len(body), ID: ev.ID}
	fill := func(op schemas.Op, seq uint64, prev string, key schemas.Key, det schemas.Detected) {
		o.Op, o.Seq, o.PrevID, o.WorkNo, o.Phone, o.ByPoll = op, seq, prev, key.WorkNo, key.PhoneNum, det.ByPoll
		if det.AfterPoll != nil {
			o.AfterPoll = *det.AfterPoll
		}
	}
	switch ev.Type {
	case schemas.TypeAgentCalls:
		var c schemas.Change[schemas.AgentCalls]
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			return o, false, fmt.Errorf("decode calls on %s: %w", subject, err)
		}
		fill(c.Op, c.Seq, c.PrevID, c.Key, c.Detected)
		if c.Before != nil {
			o.Before = c.Before.CallIDs
		}
		if c.After != nil {
			o.After = c.After.CallIDs
		}
	case schemas.TypeAgentSoftphone:
		var c schemas.Change[schemas.AgentSoftphone]
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			return o, false, fmt.Errorf("decode softphone on %s: %w", subject, err)
		}
		fill(c.Op, c.Seq, c.PrevID, c.Key, c.Detected)
		if c.Before != nil {
			o.Before = []string{c.Before.SIPAccount + "|" + c.Before.AccountCode}
		}
		if c.After != nil {
			o.After = []string{c.After.SIPAccount + "|" + c.After.AccountCode}
		}
	case schemas.TypeAgentState:
		var c schemas.Change[schemas.AgentState]
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			return o, false, fmt.Errorf("decode agent state on %s: %w", subject, err)
		}
		fill(c.Op, c.Seq, c.PrevID, c.Key, c.Detected)
		if c.Before != nil {
			o.Before = []string{strconv.Itoa(c.Before.StateCode)}
		}
		if c.After != nil {
			o.After = []string{strconv.Itoa(c.After.StateCode)}
		}
	case schemas.TypePhoneState:
		var c schemas.Change[schemas.PhoneState]
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			return o, false, fmt.Errorf("decode phone on %s: %w", subject, err)
		}
		fill(c.Op, c.Seq, c.PrevID, c.Key, c.Detected)
		if c.Before != nil {
			o.Before = []string{strconv.Itoa(c.Before.StatusCode)}
		}
		if c.After != nil {
			o.After = []string{strconv.Itoa(c.After.StatusCode)}
		}
	default:
		return o, false, nil
	}
	return o, true, nil
}

// Scored groups: every truth change the bridge is meant to detect falls in
// exactly one.
const (
	groupCallsActive = "calls_active" // agent in a call or in one within ActiveWindow (the poller's "active")
	groupCallsIdle   = "calls_idle"
	groupSoftphone   = "softphone"
	groupPhone       = "phone_status"
	// groupAgentState is scored only when scoreInput.StateInterval is set:
	// agent.state comes from the CMS sweep alone.
	groupAgentState = "agent_state"
)

// lastingFixed is the lifetime from which a change counts in the recall
// that does not depend on a group's interval (RecallLasting2s): the figure
// that compares per-agent polling with the sweep.
const lastingFixed = 2 * time.Second

var groups = []string{groupCallsActive, groupCallsIdle, groupSoftphone, groupPhone}

// scoreInput is everything the scoring looks at; scoring is a pure function
// of it.
type scoreInput struct {
	Truth  []cecsim.Change
	Events []observed // in stream order
	// Truth changes count when WindowStart < At <= WindowEnd and the entity
	// had been snapshotted before At. Changes after WindowEnd were in flight
	// when the run ended and are neither counted nor held against the bridge.
	WindowStart, WindowEnd time.Time
	SignedIn               map[int]bool // agents signed in when the truth starts

	CallsInterval, IdleInterval, ActiveWindow, RosterInterval, PhonesInterval time.Duration
	// StateInterval, when set, scores agent.state events against the state
	// every agent had by the truth (the sweep's interval).
	StateInterval time.Duration

	// The chaos drill's additions; the plain bench leaves them empty.
	//
	// Excused are spans in which nobody can be asked to poll (a killed
	// holder not back yet, a lease not yet expired): a change counts as
	// lasting two intervals only if it did so outside them.
	Excused []span
	// Lost are detections a killed process took with it: a change that
	// began inside one cannot reach the stream by design unless it went on
	// for two intervals after the span's Until, when a living holder could
	// see it; otherwise it is not counted either.
	Lost []lostSpan
	// Outage is the NATS outage: the changes that began and ended inside it
	// are also counted on their own, since the bridge must go on seeing.
	Outage span
	// Unstored are events the bridge produced that never reached the stream
	// (read back from a killed process's spool): they count as detections,
	// nothing else.
	Unstored []observed
}

// span is a stretch of time [From, To] and why it is there.
type span struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Reason string    `json:"reason,omitempty"`
}

func (s span) isZero() bool { return s.From.IsZero() && s.To.IsZero() }

func (s span) holds(t time.Time) bool { return !t.Before(s.From) && !t.After(s.To) }

// lostSpan: changes that began in the span were seen only by a process
// that died with them in memory; from Until a living holder could see
// them again.
type lostSpan struct {
	span
	Until time.Time `json:"until"`
}

// lostDetection tells a change that began in a lost span and did not go
// on for two intervals (iv each) after the span's Until: nobody alive
// could have reported it.
func lostDetection(at, end time.Time, lost []lostSpan, iv time.Duration) bool {
	for _, l := range lost {
		if l.holds(at) && end.Sub(l.Until) < 2*iv {
			return true
		}
	}
	return false
}

// longestVisible is the longest stretch of [from, to] that no excused span
// covers.
func longestVisible(from, to time.Time, excused []span) time.Duration {
	sorted := slices.Clone(excused)
	slices.SortFunc(sorted, func(a, b span) int { return a.From.Compare(b.From) })
	var best time.Duration
	cur := from
	for _, x := range sorted {
		if !x.To.After(cur) {
			continue
		}
		if !x.From.Before(to) {
			break
		}
		if x.From.After(cur) {
			best = max(best, x.From.Sub(cur))
		}
		cur = x.To
	}
	if to.After(cur) {
		best = max(best, to.Sub(cur))
	}
	return best
}

// Latency is a distribution summary in milliseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// GroupScore is the detection quality for one group of changes.
type GroupScore struct {
	Changes     int     `json:"changes"` // eligible truth changes
	Seen        int     `json:"seen"`
	MissedShort int     `json:"missed_shorter_than_interval"`
	MissedOther int     `json:"missed_other"`
	Long        int     `json:"lasting_2_intervals"`
	LongSeen    int     `json:"lasting_2_intervals_seen"`
	Recall      float64 `json:"recall"`
	RecallLong  float64 `json:"recall_lasting_2_intervals"`
	// Lasting2s counts the changes whose new state held for lastingFixed
	// or longer, whatever the group's interval.
	Lasting2s       int      `json:"lasting_2s"`
	Lasting2sSeen   int      `json:"lasting_2s_seen"`
	RecallLasting2s float64  `json:"recall_lasting_2s"`
	Latency         Latency  `json:"latency_by_poll"`
	LatencyE2E      Latency  `json:"latency_to_stream"`
	SignedInLat     Latency  `json:"latency_signed_in"`
	Interval        string   `json:"interval"`
	MissedSample    []string `json:"missed_sample,omitempty"`

	// With excused spans (the chaos drill): changes that lasted two
	// intervals only counting excused time, and those missed for it; the
	// changes that began and ended inside the NATS outage.
	LongExcused    int `json:"lasting_2_intervals_only_with_excused_time,omitempty"`
	MissedExcused  int `json:"missed_in_excused_time,omitempty"`
	OutageLong     int `json:"outage_lasting_2_intervals,omitempty"`
	OutageLongSeen int `json:"outage_lasting_2_intervals_seen,omitempty"`
	// LongMissedSample names missed changes that lasted two intervals.
	LongMissedSample []string `json:"long_missed_sample,omitempty"`
}

// Score is the detection quality of a run.
type Score struct {
	Events       int                    `json:"events"` // entity events read
	Snapshots    int                    `json:"snapshots"`
	Facts        int                    `json:"facts"` // changes the events assert
	False        int                    `json:"false"`
	Duplicates   int                    `json:"duplicates"`
	SeqGaps      int                    `json:"seq_gaps"`
	PreSnapshot  int                    `json:"matched_before_snapshot"`
	OutOfWindow  int                    `json:"matched_outside_window"`
	Roster       int                    `json:"roster_events"` // create/delete tied to roster truth
	Groups       map[string]*GroupScore `json:"groups"`
	Calls        GroupScore             `json:"calls_all"`
	FalseSample  []string               `json:"false_sample,omitempty"`
	DupSample    []string               `json:"duplicate_sample,omitempty"`
	TruthInRange int                    `json:"truth_changes_in_window"`
	// UnstoredSeen counts truth changes only an unstored event detected.
	UnstoredSeen int `json:"seen_only_unstored,omitempty"`
}

type tfact struct {
	c        cecsim.Change
	entity   string
	value    string
	group    string
	lifetime time.Duration // how long the new state held (MaxInt64: to the end)
	start    time.Time     // when that state began (a call's start, for its removal)
	prev     *tfact        // the entity's previous state change (softphone, phone)
	signedIn bool
	matched  bool
	excused  bool // lasted two intervals only counting excused time
	latency  time.Duration
	e2e      time.Duration
	hasE2E   bool
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

func summarise(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	return Latency{N: len(d), P50: pct(d, 0.50), P95: pct(d, 0.95), P99: pct(d, 0.99), Max: pct(d, 1)}
}

// score matches the events against the truth. Every fact an event asserts
// (a call ID added or removed, a softphone or phone status taking a value)
// must match a truth change on the same entity with the same value that
// happened no later than the poll that saw it; a fact matching nothing is
// false, a fact matching a change an earlier event already matched (or an
// event repeating a subject sequence) is a duplicate.
func score(in scoreInput) Score {
	truth := slices.Clone(in.Truth)
	sort.Slice(truth, func(i, j int) bool { return truth[i].Seq < truth[j].Seq })

	// Build truth facts per entity, in time order.
	byEntity := map[string][]*tfact{}
	var facts []*tfact
	added := map[string]*tfact{} // call ID -> its call_added fact
	signed := map[int]bool{}
	for k, v := range in.SignedIn {
		signed[k] = v
	}
	roster := map[string]int{} // entity -> roster changes (agent/phone added/removed)
	// The poller's "active": in a call, or seen in one within ActiveWindow,
	// as far as the bridge itself saw (its call events).
	callEvents := map[int][]observed{}
	for _, e := range in.Events {
		if e.Type == schemas.TypeAgentCalls {
			callEvents[e.WorkNo] = append(callEvents[e.WorkNo], e)
		}
	}
	activeAt := func(wn int, at time.Time) bool {
		var inCall bool
		var last time.Time
		for _, e := range callEvents[wn] {
			if e.ByPoll.After(at) {
				break
			}
			inCall = len(e.After) > 0
			if len(e.After) > 0 || len(e.Before) > 0 {
				last = e.ByPoll
			}
		}
		return inCall || (!last.IsZero() && at.Sub(last) < in.ActiveWindow)
	}
	addFact := func(f *tfact) {
		f.signedIn = signed[f.c.WorkNo]
		if l := byEntity[f.entity]; len(l) > 0 && f.group != groupCallsActive && f.group != groupCallsIdle {
			prev := l[len(l)-1]
			prev.lifetime = f.c.At.Sub(prev.c.At)
			f.prev = prev
		}
		byEntity[f.entity] = append(byEntity[f.entity], f)
		facts = append(facts, f)
	}
	var states *stateTruth
	if in.StateInterval > 0 {
		states = newStateTruth(in.SignedIn)
	}
	for _, c := range truth {
		if sc, ok := states.apply(c); ok {
			addFact(&tfact{c: sc, entity: stateEntity(c.WorkNo), value: sc.After, group: groupAgentState,
				lifetime: time.Duration(math.MaxInt64), start: c.At})
		}
		f := &tfact{c: c, lifetime: time.Duration(math.MaxInt64), start: c.At}
		switch c.Kind {
		case cecsim.KindSignedIn:
			signed[c.WorkNo] = true
			continue
		case cecsim.KindSignedOut:
			signed[c.WorkNo] = false
			continue
		case cecsim.KindAgentAdded, cecsim.KindAgentRemoved:
			roster["a"+strconv.Itoa(c.WorkNo)]++
			continue
		case cecsim.KindPhoneAdded, cecsim.KindPhoneRemoved:
			roster["p"+c.PhoneNum]++
			continue
		case cecsim.KindCallAdded:
			f.entity, f.value = "a"+strconv.Itoa(c.WorkNo), "+"+c.CallID
			f.group = groupCallsIdle
			if activeAt(c.WorkNo, c.At) {
				f.group = groupCallsActive
			}
			added[c.CallID] = f
		case cecsim.KindCallRemoved:
			f.entity, f.value = "a"+strconv.Itoa(c.WorkNo), "-"+c.CallID
			f.group = groupCallsActive
			if a := added[c.CallID]; a != nil {
				// A removal is only observable if the call was: it shares
				// the call's lifetime and the group its start fell in.
				a.lifetime = c.At.Sub(a.c.At)
				f.lifetime, f.group, f.start = a.lifetime, a.group, a.c.At
			}
		case cecsim.KindSoftphone:
			f.entity, f.value, f.group = "s"+strconv.Itoa(c.WorkNo), c.After, groupSoftphone
		case cecsim.KindPhoneStatus:
			f.entity, f.value, f.group = "p"+c.PhoneNum, c.After, groupPhone
		default:
			continue
		}
		addFact(f)
	}

	var s Score
	s.Groups = map[string]*GroupScore{}
	snapshot := map[string]time.Time{}
	seen := map[string]uint64{} // subject -> last seq
	sample := func(list *[]string, msg string) {
		if len(*list) < 10 {
			*list = append(*list, msg)
		}
	}
	for _, e := range in.Events {
		s.Events++
		if last, ok := seen[e.Subject]; ok {
			if e.Seq <= last {
				s.Duplicates++
				sample(&s.DupSample, fmt.Sprintf("%s seq %d repeated", e.Subject, e.Seq))
				continue
			}
			if e.Seq != last+1 {
				s.SeqGaps++
			}
		}
		seen[e.Subject] = e.Seq
		entity := factEntity(e)
		if e.Op == schemas.OpSnapshot {
			s.Snapshots++
			if _, ok := snapshot[entity]; !ok {
				snapshot[entity] = e.ByPoll
			}
			continue
		}
		if e.Type != schemas.TypeAgentCalls && (e.Op == schemas.OpCreate || e.Op == schemas.OpDelete) {
			// Roster or phone-list membership, not a state change of its
			// own: it must be backed by a roster truth change.
			rk := entity
			if e.Type == schemas.TypeAgentSoftphone || e.Type == schemas.TypeAgentState {
				rk = "a" + strconv.Itoa(e.WorkNo)
			}
			if roster[rk] == 0 {
				s.False++
				sample(&s.FalseSample, fmt.Sprintf("%s %s without a roster change", e.Subject, e.Op))
			} else {
				s.Roster++
			}
			continue
		}
		values := factValues(e)
		if len(values) == 0 && e.Op != schemas.OpCreate && e.Op != schemas.OpDelete {
			// An update that changes nothing the truth knows of.
			if slices.Equal(e.Before, e.After) {
				s.Duplicates++
				sample(&s.DupSample, fmt.Sprintf("%s seq %d changes nothing", e.Subject, e.Seq))
			}
			continue
		}
		for _, v := range values {
			s.Facts++
			best, done := matchFact(byEntity[entity], v, e.ByPoll)
			switch {
			case best != nil:
				best.matched = true
				best.latency = e.ByPoll.Sub(best.c.At)
				if !e.Stored.IsZero() {
					best.e2e, best.hasE2E = e.Stored.Sub(best.c.At), true
				}
			case done != nil:
				s.Duplicates++
				sample(&s.DupSample, fmt.Sprintf("%s seq %d repeats %s", e.Subject, e.Seq, v))
			default:
				s.False++
				sample(&s.FalseSample, fmt.Sprintf("%s seq %d asserts %s with no truth by %s", e.Subject, e.Seq, v, e.ByPoll.Format(time.RFC3339Nano)))
			}
		}
	}

	// Events that never reached the stream still show what the bridge saw.
	for _, e := range in.Unstored {
		if e.Op == schemas.OpSnapshot || (e.Type != schemas.TypeAgentCalls && (e.Op == schemas.OpCreate || e.Op == schemas.OpDelete)) {
			continue
		}
		entity := factEntity(e)
		for _, v := range factValues(e) {
			if best, _ := matchFact(byEntity[entity], v, e.ByPoll); best != nil {
				best.matched = true
				best.latency = e.ByPoll.Sub(best.c.At)
				s.UnstoredSeen++
			}
		}
	}

	interval := map[string]time.Duration{
		groupCallsActive: in.CallsInterval, groupCallsIdle: in.IdleInterval,
		groupSoftphone: in.RosterInterval, groupPhone: in.PhonesInterval,
		groupAgentState: in.StateInterval,
	}
	lat := map[string][]time.Duration{}
	e2e := map[string][]time.Duration{}
	signedLat := map[string][]time.Duration{}
	var callLat, callE2E, callSigned []time.Duration
	scored := groups
	if states != nil {
		scored = append(slices.Clone(groups), groupAgentState)
	}
	for _, g := range scored {
		s.Groups[g] = &GroupScore{Interval: interval[g].String()}
	}
	for _, f := range facts {
		if !f.c.At.After(in.WindowStart) || f.c.At.After(in.WindowEnd) {
			if f.matched {
				s.OutOfWindow++
			}
			continue
		}
		snap, ok := snapshot[f.entity]
		if ok && !f.c.At.After(snap) {
			if f.matched {
				s.PreSnapshot++
			}
			continue
		}
		s.TruthInRange++
		g := s.Groups[f.group]
		g.Changes++
		iv := interval[f.group]
		// A state that went back to what it was before a missed, short
		// excursion is no change at all from the bridge's side: it belongs
		// to the excursion, however long it then lasts.
		revert := f.prev != nil && !f.prev.matched && f.prev.lifetime < iv && f.c.After == f.prev.c.Before
		long := f.lifetime >= 2*iv && !revert
		end := in.WindowEnd.Add(time.Hour) // "to the end"
		if f.lifetime != time.Duration(math.MaxInt64) {
			end = f.start.Add(f.lifetime)
		}
		excused := long && ((len(in.Excused) > 0 && longestVisible(f.start, end, in.Excused) < 2*iv) || lostDetection(f.start, end, in.Lost, iv))
		// Going back to the state the bridge last published, after an
		// excursion nobody could see, is no change from its side either.
		excused = excused || (long && !f.matched && f.prev != nil && f.prev.excused && !f.prev.matched && f.c.After == f.prev.c.Before)
		f.excused = excused
		if excused {
			long = false
			g.LongExcused++
		}
		inOutage := long && !in.Outage.isZero() && in.Outage.holds(f.start) && !end.After(in.Outage.To)
		if long {
			g.Long++
		}
		lasting := f.lifetime >= lastingFixed && !revert && !excused
		if lasting {
			g.Lasting2s++
		}
		if inOutage {
			g.OutageLong++
		}
		if f.matched {
			g.Seen++
			if long {
				g.LongSeen++
			}
			if lasting {
				g.Lasting2sSeen++
			}
			if inOutage {
				g.OutageLongSeen++
			}
			lat[f.group] = append(lat[f.group], f.latency)
			if f.hasE2E {
				e2e[f.group] = append(e2e[f.group], f.e2e)
			}
			if f.signedIn {
				signedLat[f.group] = append(signedLat[f.group], f.latency)
			}
			if f.group == groupCallsActive || f.group == groupCallsIdle {
				callLat = append(callLat, f.latency)
				if f.hasE2E {
					callE2E = append(callE2E, f.e2e)
				}
				if f.signedIn {
					callSigned = append(callSigned, f.latency)
				}
			}
			continue
		}
		switch {
		case f.lifetime < iv || revert:
			g.MissedShort++
		case excused:
			g.MissedExcused++
		default:
			g.MissedOther++
			desc := fmt.Sprintf("%s %s %s at %s (held %s)", f.c.Kind, f.entity, f.value, f.c.At.Format("15:04:05.000"), lifetimeString(f.lifetime))
			if len(g.MissedSample) < 5 {
				g.MissedSample = append(g.MissedSample, desc)
			}
			if long && len(g.LongMissedSample) < 5 {
				g.LongMissedSample = append(g.LongMissedSample, desc)
			}
		}
	}
	for _, name := range scored {
		g := s.Groups[name]
		g.Recall = ratio(float64(g.Seen), float64(g.Changes))
		g.RecallLong = ratio(float64(g.LongSeen), float64(g.Long))
		g.RecallLasting2s = ratio(float64(g.Lasting2sSeen), float64(g.Lasting2s))
		g.Latency = summarise(lat[name])
		g.LatencyE2E = summarise(e2e[name])
		g.SignedInLat = summarise(signedLat[name])
	}
	a, i := s.Groups[groupCallsActive], s.Groups[groupCallsIdle]
	s.Calls = GroupScore{
		Changes: a.Changes + i.Changes, Seen: a.Seen + i.Seen,
		MissedShort: a.MissedShort + i.MissedShort, MissedOther: a.MissedOther + i.MissedOther,
		Long: a.Long + i.Long, LongSeen: a.LongSeen + i.LongSeen,
		Lasting2s: a.Lasting2s + i.Lasting2s, Lasting2sSeen: a.Lasting2sSeen + i.Lasting2sSeen,
		LongExcused: a.LongExcused + i.LongExcused, MissedExcused: a.MissedExcused + i.MissedExcused,
		OutageLong: a.OutageLong + i.OutageLong, OutageLongSeen: a.OutageLongSeen + i.OutageLongSeen,
		Latency: summarise(callLat), LatencyE2E: summarise(callE2E), SignedInLat: summarise(callSigned),
		Interval: in.CallsInterval.String() + "/" + in.IdleInterval.String(),
	}
	s.Calls.Recall = ratio(float64(s.Calls.Seen), float64(s.Calls.Changes))
	s.Calls.RecallLong = ratio(float64(s.Calls.LongSeen), float64(s.Calls.Long))
	s.Calls.RecallLasting2s = ratio(float64(s.Calls.Lasting2sSeen), float64(s.Calls.Lasting2s))
	return s
}

// factEntity names the entity an event's facts are about, as the truth
// facts name it.
func factEntity(e observed) string {
	switch e.Type {
	case schemas.TypeAgentCalls:
		return "a" + strconv.Itoa(e.WorkNo)
	case schemas.TypeAgentSoftphone:
		return "s" + strconv.Itoa(e.WorkNo)
	case schemas.TypePhoneState:
		return "p" + e.Phone
	case schemas.TypeAgentState:
		return stateEntity(e.WorkNo)
	}
	return ""
}

// factValues lists the changes an event asserts: call IDs added ("+id") or
// removed ("-id"), or the one value a softphone or phone took.
func factValues(e observed) []string {
	var values []string
	switch e.Type {
	case schemas.TypeAgentCalls:
		for _, id := range e.After {
			if !slices.Contains(e.Before, id) {
				values = append(values, "+"+id)
			}
		}
		for _, id := range e.Before {
			if !slices.Contains(e.After, id) {
				values = append(values, "-"+id)
			}
		}
	default:
		if len(e.After) == 1 {
			values = []string{e.After[0]}
		}
	}
	return values
}

// matchFact finds the truth change an asserted value stands for: the
// latest one not yet matched that happened by the poll (best), else one
// already matched (done: the assertion repeats it).
func matchFact(facts []*tfact, value string, byPoll time.Time) (best, done *tfact) {
	for _, f := range facts {
		if f.value != value || f.c.At.After(byPoll) {
			continue
		}
		if f.matched {
			done = f
		} else {
			best = f
		}
	}
	return best, done
}

func lifetimeString(d time.Duration) string {
	if d == time.Duration(math.MaxInt64) {
		return "to the end"
	}
	return d.Round(time.Millisecond).String()
}

// ratio is a/b, or NaN-free 0 when b is 0... except that an empty set has
// perfect recall.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 1
	}
	return a / b
}

// decodeHeartbeat reads a bridge heartbeat event.
func decodeHeartbeat(body []byte) (schemas.Heartbeat, error) {
	var ev schemas.Event
	var hb schemas.Heartbeat
	if err := json.Unmarshal(body, &ev); err != nil {
		return hb, fmt.Errorf("decode heartbeat: %w", err)
	}
	if err := json.Unmarshal(ev.Data, &hb); err != nil {
		return hb, fmt.Errorf("decode heartbeat data: %w", err)
	}
	return hb, nil
}

// decodeVisibility reads a bridge visibility event.
func decodeVisibility(body []byte) (schemas.Visibility, error) {
	var ev schemas.Event
	var v schemas.Visibility
	if err := json.Unmarshal(body, &ev); err != nil {
		return v, fmt.Errorf("decode visibility: %w", err)
	}
	if err := json.Unmarshal(ev.Data, &v); err != nil {
		return v, fmt.Errorf("decode visibility data: %w", err)
	}
	return v, nil
}
