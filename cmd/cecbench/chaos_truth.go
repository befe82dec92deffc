package main

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// State values of the drill's timelines besides the entities' own: absent
// (not in the roster or phone list) and any (an agent added by the workload
// gets a softphone the truth does not record; any present value matches).
const (
	absentState = "\x00absent"
	anyState    = "\x00any"
)

// world is the simulator's state before its workload started: the truth
// records every change from then on.
type world struct {
	agents map[int]cecsim.AgentInfo
	phones map[string]int // status code
}

func snapshotWorld(sim *cecsim.Sim) world {
	w := world{agents: map[int]cecsim.AgentInfo{}, phones: map[string]int{}}
	for _, wn := range sim.Agents() {
		if a, ok := sim.Agent(wn); ok {
			w.agents[wn] = a
		}
	}
	for _, p := range sim.Phones() {
		w.phones[p.PhoneNum] = p.Status
	}
	return w
}

// timeline is one entity's true state over time: val[i] from at[i] on
// (at[0] is the zero time: the state before the truth began).
type timeline struct {
	at  []time.Time
	val []string
}

func newTimeline(v string) *timeline { return &timeline{at: []time.Time{{}}, val: []string{v}} }

func (t *timeline) set(at time.Time, v string) {
	if t.val[len(t.val)-1] == v {
		return
	}
	t.at = append(t.at, at)
	t.val = append(t.val, v)
}

// heldWithin says whether the entity was in state v at some instant of
// [from, to].
func (t *timeline) heldWithin(v string, from, to time.Time) bool {
	i, _ := slices.BinarySearchFunc(t.at, from, func(a, b time.Time) int { return a.Compare(b) })
	// t.at[i-1] < from <= t.at[i]: the state in force at from is val[i-1],
	// unless a change happened exactly at from.
	if i == len(t.at) || t.at[i].After(from) {
		i--
	}
	for j := i; j < len(t.at); j++ {
		if j > i && t.at[j].After(to) {
			break
		}
		if sameState(t.val[j], v) {
			return true
		}
	}
	return false
}

func sameState(truth, got string) bool {
	return truth == got || (truth == anyState && got != absentState)
}

// entityKey names an entity aspect for the drill: c (calls) and s
// (softphone) with a work number, p with a phone number.
func callsKey(wn int) string     { return "c" + strconv.Itoa(wn) }
func softphoneKey(wn int) string { return "s" + strconv.Itoa(wn) }
func phoneKey(num string) string { return "p" + num }

// buildTimelines replays the truth over the world it started from.
func buildTimelines(w world, truth []cecsim.Change) map[string]*timeline {
	tl := map[string]*timeline{}
	get := func(key string) *timeline {
		t := tl[key]
		if t == nil {
			t = newTimeline(absentState)
			tl[key] = t
		}
		return t
	}
	calls := map[int][]string{}
	for wn, a := range w.agents {
		calls[wn] = slices.Sorted(slices.Values(a.Calls))
		tl[callsKey(wn)] = newTimeline(strings.Join(calls[wn], ","))
		tl[softphoneKey(wn)] = newTimeline(a.SIPAccount + "|" + a.AccountCode)
	}
	for num, st := range w.phones {
		tl[phoneKey(num)] = newTimeline(strconv.Itoa(st))
	}
	sorted := slices.Clone(truth)
	slices.SortFunc(sorted, func(a, b cecsim.Change) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, c := range sorted {
		switch c.Kind {
		case cecsim.KindCallAdded:
			calls[c.WorkNo] = append(calls[c.WorkNo], c.CallID)
			slices.Sort(calls[c.WorkNo])
			get(callsKey(c.WorkNo)).set(c.At, strings.Join(calls[c.WorkNo], ","))
		case cecsim.KindCallRemoved:
			calls[c.WorkNo] = slices.DeleteFunc(calls[c.WorkNo], func(id string) bool { return id == c.CallID })
			get(callsKey(c.WorkNo)).set(c.At, strings.Join(calls[c.WorkNo], ","))
		case cecsim.KindSoftphone:
			get(softphoneKey(c.WorkNo)).set(c.At, c.After)
		case cecsim.KindAgentAdded:
			calls[c.WorkNo] = nil
			get(callsKey(c.WorkNo)).set(c.At, "")
			get(softphoneKey(c.WorkNo)).set(c.At, anyState)
		case cecsim.KindAgentRemoved:
			delete(calls, c.WorkNo)
			get(callsKey(c.WorkNo)).set(c.At, absentState)
			get(softphoneKey(c.WorkNo)).set(c.At, absentState)
		case cecsim.KindPhoneStatus:
			get(phoneKey(c.PhoneNum)).set(c.At, c.After)
		case cecsim.KindPhoneAdded:
			get(phoneKey(c.PhoneNum)).set(c.At, c.After)
		case cecsim.KindPhoneRemoved:
			get(phoneKey(c.PhoneNum)).set(c.At, absentState)
		}
	}
	return tl
}

// eventState is the entity and the state an event says it is in.
func eventState(e observed) (key, state string) {
	switch e.Type {
	case schemas.TypeAgentCalls:
		key = callsKey(e.WorkNo)
	case schemas.TypeAgentSoftphone:
		key = softphoneKey(e.WorkNo)
	case schemas.TypePhoneState:
		key = phoneKey(e.Phone)
	}
	switch {
	case e.Op == schemas.OpDelete:
		return key, absentState
	case e.Type == schemas.TypeAgentCalls:
		return key, strings.Join(e.After, ",")
	case len(e.After) == 1:
		return key, e.After[0]
	}
	return key, absentState
}

// Slack around a detection window for the clocks of two processes on one
// machine, and how far before by_poll a poll without an after_poll may
// have looked (a request timeout and a page walk).
const (
	windowSlack    = 100 * time.Millisecond
	windowLookback = 5 * time.Second
)

// falseStates lists the events whose state the entity never had within
// the event's detection window.
func falseStates(tl map[string]*timeline, events []observed) []string {
	var out []string
	for _, e := range events {
		key, st := eventState(e)
		from := e.AfterPoll
		if from.IsZero() {
			from = e.ByPoll.Add(-windowLookback)
		}
		t := tl[key]
		if t != nil && t.heldWithin(st, from.Add(-windowSlack), e.ByPoll.Add(windowSlack)) {
			continue
		}
		out = append(out, fmt.Sprintf("%s seq %d (%s) says %s, never true in [%s, %s]",
			e.Subject, e.Seq, e.Op, showState(st), from.Format("15:04:05.000"), e.ByPoll.Format("15:04:05.000")))
	}
	return out
}

// finalMismatches lists the entities whose last state in the stream was
// not their true state at any instant of [at-tol, at].
func finalMismatches(tl map[string]*timeline, events []observed, at time.Time, tol time.Duration) []string {
	last := map[string]string{}
	subject := map[string]string{}
	for _, e := range events {
		key, st := eventState(e)
		last[key], subject[key] = st, e.Subject
	}
	var out []string
	for key, t := range tl {
		got, ok := last[key]
		if !ok {
			got = absentState
		}
		if !t.heldWithin(got, at.Add(-tol), at) {
			out = append(out, fmt.Sprintf("%s %s: stream says %s, truth %s", key, subject[key], showState(got), showState(t.val[len(t.val)-1])))
		}
	}
	for key, got := range last {
		if tl[key] == nil && got != absentState {
			out = append(out, fmt.Sprintf("%s %s: stream says %s of an entity the simulator never had", key, subject[key], showState(got)))
		}
	}
	slices.Sort(out)
	return out
}

func showState(s string) string {
	switch s {
	case absentState:
		return "(absent)"
	case anyState:
		return "(any)"
	case "":
		return "(none)"
	}
	return s
}
