package main

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/cecbridge/cecbridge/internal/finalstate"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// Each rule the stream must keep is counted under its own name when
// broken, and only then.
func TestCheckHistoryCountsEachBrokenRule(t *testing.T) {
	c := func(wn int, seq uint64, ids ...string) schemas.Record {
		return schematest.CallsRecord("acme", wn, seq, ids...)
	}
	forked := c(1001, 2, "other-call")
	cases := []struct {
		name string
		recs []schemas.Record
		want HistoryCheck
	}{
		{"clean", []schemas.Record{c(1001, 1), c(1002, 1), c(1001, 2, "a"), c(1001, 3)},
			HistoryCheck{Events: 4, Subjects: 2}},
		{"stored twice", []schemas.Record{c(1001, 1), c(1001, 2, "a"), c(1001, 2, "a")},
			HistoryCheck{Events: 3, Subjects: 1, Duplicates: 1}},
		{"fork", []schemas.Record{c(1001, 1), c(1001, 2, "a"), forked},
			HistoryCheck{Events: 3, Subjects: 1, Forks: 1}},
		{"hole", []schemas.Record{c(1001, 1), c(1001, 4, "a")},
			HistoryCheck{Events: 2, Subjects: 1, Holes: 1}},
		{"hole at the start", []schemas.Record{c(1001, 3)},
			HistoryCheck{Events: 1, Subjects: 1, Holes: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := checkHistory(finalstate.MsgsOf(tc.recs...))
			if (len(got.Problems) == 0) != got.Clean() {
				t.Errorf("problems %q with Clean() = %v", got.Problems, got.Clean())
			}
			got.Problems = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.Clean() != (tc.want.Duplicates+tc.want.Forks+tc.want.Holes == 0) {
				t.Errorf("Clean() = %v for %+v", got.Clean(), got)
			}
		})
	}

	// A link to anything but the event before is broken: seq 2 of agent
	// 1002 names seq 1 of agent 1001.
	wrong := c(1002, 2)
	wrong.Body = bytes.Replace(wrong.Body, []byte(schemas.EventID(schemas.AgentCallsSubject("acme", 1002), 1)),
		[]byte(schemas.EventID(schemas.AgentCallsSubject("acme", 1001), 1)), 1)
	h := checkHistory(finalstate.MsgsOf(c(1002, 1), wrong))
	if h.BrokenLinks != 1 || len(h.Problems) != 1 || h.Clean() {
		t.Errorf("broken link: %+v", h)
	}
	// Whatever else the rules find counts as another defect.
	if h := checkHistory([]finalstate.Msg{{StreamSeq: 1, Subject: schemas.AgentCallsSubject("acme", 1001), Data: []byte("{")}}); h.Other != 1 || h.Clean() {
		t.Errorf("undecodable: %+v", h)
	}
}
