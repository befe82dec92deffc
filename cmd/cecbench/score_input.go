package main

import (
	"slices"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

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
