package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

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
