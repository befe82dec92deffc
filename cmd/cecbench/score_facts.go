package main

import (
	"slices"
	"strconv"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

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
