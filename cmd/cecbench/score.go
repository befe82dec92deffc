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
}

// decodeEvent turns one stored event body into an observed event. Bridge
// events (visibility, heartbeat) come back with ok == false.
func decodeEvent(subject string, body []byte, stored time.Time) (observed, bool, error) {
	var ev schemas.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return observed{}, false, fmt.Errorf("decode event on %s: %w", subject, err)
	}
	o := observed{Subject: subject, Type: ev.Type, Stored: stored, Size: len(body)}
	fill := func(op schemas.Op, seq uint64, key schemas.Key, det schemas.Detected) {
		o.Op, o.Seq, o.WorkNo, o.Phone, o.ByPoll = op, seq, key.WorkNo, key.PhoneNum, det.ByPoll
	}
	switch ev.Type {
	case schemas.TypeAgentCalls:
		var c schemas.Change[schemas.AgentCalls]
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			return o, false, fmt.Errorf("decode calls on %s: %w", subject, err)
		}
		fill(c.Op, c.Seq, c.Key, c.Detected)
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
		fill(c.Op, c.Seq, c.Key, c.Detected)
		if c.Before != nil {
			o.Before = []string{c.Before.SIPAccount + "|" + c.Before.AccountCode}
		}
		if c.After != nil {
			o.After = []string{c.After.SIPAccount + "|" + c.After.AccountCode}
		}
	case schemas.TypePhoneState:
		var c schemas.Change[schemas.PhoneState]
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			return o, false, fmt.Errorf("decode phone on %s: %w", subject, err)
		}
		fill(c.Op, c.Seq, c.Key, c.Detected)
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
)

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
	Changes      int      `json:"changes"` // eligible truth changes
	Seen         int      `json:"seen"`
	MissedShort  int      `json:"missed_shorter_than_interval"`
	MissedOther  int      `json:"missed_other"`
	Long         int      `json:"lasting_2_intervals"`
	LongSeen     int      `json:"lasting_2_intervals_seen"`
	Recall       float64  `json:"recall"`
	RecallLong   float64  `json:"recall_lasting_2_intervals"`
	Latency      Latency  `json:"latency_by_poll"`
	LatencyE2E   Latency  `json:"latency_to_stream"`
	SignedInLat  Latency  `json:"latency_signed_in"`
	Interval     string   `json:"interval"`
	MissedSample []string `json:"missed_sample,omitempty"`
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
}

type tfact struct {
	c        cecsim.Change
	entity   string
	value    string
	group    string
	lifetime time.Duration // how long the new state held (MaxInt64: to the end)
	prev     *tfact        // the entity's previous state change (softphone, phone)
	signedIn bool
	matched  bool
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
	for _, c := range truth {
		f := &tfact{c: c, lifetime: time.Duration(math.MaxInt64)}
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
				f.lifetime, f.group = a.lifetime, a.group
			}
		case cecsim.KindSoftphone:
			f.entity, f.value, f.group = "s"+strconv.Itoa(c.WorkNo), c.After, groupSoftphone
		case cecsim.KindPhoneStatus:
			f.entity, f.value, f.group = "p"+c.PhoneNum, c.After, groupPhone
		default:
			continue
		}
		f.signedIn = signed[c.WorkNo]
		if l := byEntity[f.entity]; len(l) > 0 && f.group != groupCallsActive && f.group != groupCallsIdle {
			prev := l[len(l)-1]
			prev.lifetime = c.At.Sub(prev.c.At)
			f.prev = prev
		}
		byEntity[f.entity] = append(byEntity[f.entity], f)
		facts = append(facts, f)
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
		var entity string
		switch e.Type {
		case schemas.TypeAgentCalls:
			entity = "a" + strconv.Itoa(e.WorkNo)
		case schemas.TypeAgentSoftphone:
			entity = "s" + strconv.Itoa(e.WorkNo)
		case schemas.TypePhoneState:
			entity = "p" + e.Phone
		}
		if e.Op == schemas.OpSnapshot {
			s.Snapshots++
			if _, ok := snapshot[entity]; !ok {
				snapshot[entity] = e.ByPoll
			}
			continue
		}
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
			switch {
			case e.Op == schemas.OpCreate || e.Op == schemas.OpDelete:
				// Roster or phone-list membership, not a state change of
				// its own: it must be backed by a roster truth change.
				rk := entity
				if e.Type == schemas.TypeAgentSoftphone {
					rk = "a" + strconv.Itoa(e.WorkNo)
				}
				if roster[rk] == 0 {
					s.False++
					sample(&s.FalseSample, fmt.Sprintf("%s %s without a roster change", e.Subject, e.Op))
				} else {
					s.Roster++
				}
				continue
			case len(e.After) == 1:
				values = []string{e.After[0]}
			}
		}
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
			var best, done *tfact
			for _, f := range byEntity[entity] {
				if f.value != v || f.c.At.After(e.ByPoll) {
					continue
				}
				if f.matched {
					done = f
				} else {
					best = f // the latest unmatched one wins
				}
			}
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

	interval := map[string]time.Duration{
		groupCallsActive: in.CallsInterval, groupCallsIdle: in.IdleInterval,
		groupSoftphone: in.RosterInterval, groupPhone: in.PhonesInterval,
	}
	lat := map[string][]time.Duration{}
	e2e := map[string][]time.Duration{}
	signedLat := map[string][]time.Duration{}
	var callLat, callE2E, callSigned []time.Duration
	for _, g := range groups {
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
		if long {
			g.Long++
		}
		if f.matched {
			g.Seen++
			if long {
				g.LongSeen++
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
		if f.lifetime < iv || revert {
			g.MissedShort++
		} else {
			g.MissedOther++
			if len(g.MissedSample) < 5 {
				g.MissedSample = append(g.MissedSample, fmt.Sprintf("%s %s %s at %s (held %s)",
					f.c.Kind, f.entity, f.value, f.c.At.Format("15:04:05.000"), lifetimeString(f.lifetime)))
			}
		}
	}
	for _, name := range groups {
		g := s.Groups[name]
		g.Recall = ratio(float64(g.Seen), float64(g.Changes))
		g.RecallLong = ratio(float64(g.LongSeen), float64(g.Long))
		g.Latency = summarise(lat[name])
		g.LatencyE2E = summarise(e2e[name])
		g.SignedInLat = summarise(signedLat[name])
	}
	a, i := s.Groups[groupCallsActive], s.Groups[groupCallsIdle]
	s.Calls = GroupScore{
		Changes: a.Changes + i.Changes, Seen: a.Seen + i.Seen,
		MissedShort: a.MissedShort + i.MissedShort, MissedOther: a.MissedOther + i.MissedOther,
		Long: a.Long + i.Long, LongSeen: a.LongSeen + i.LongSeen,
		Latency: summarise(callLat), LatencyE2E: summarise(callE2E), SignedInLat: summarise(callSigned),
		Interval: in.CallsInterval.String() + "/" + in.IdleInterval.String(),
	}
	s.Calls.Recall = ratio(float64(s.Calls.Seen), float64(s.Calls.Changes))
	s.Calls.RecallLong = ratio(float64(s.Calls.LongSeen), float64(s.Calls.Long))
	return s
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
