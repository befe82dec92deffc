package audit_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/cecbridge/cecbridge/internal/audit"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

func msgs(recs ...schemas.Record) []audit.Msg {
	out := make([]audit.Msg, len(recs))
	for i, r := range recs {
		out[i] = audit.Msg{StreamSeq: uint64(i + 1), Subject: r.Subject, Data: r.Body}
	}
	return out
}

// Each rule the stream must keep is counted when broken, and only then.
func TestCheckHistoryCountsEachBrokenRule(t *testing.T) {
	c := func(wn int, seq uint64, ids ...string) schemas.Record {
		return schematest.CallsRecord("acme", wn, seq, ids...)
	}
	forked := c(1001, 2, "other-call")
	cases := []struct {
		name string
		recs []schemas.Record
		want audit.History
	}{
		{"clean", []schemas.Record{c(1001, 1), c(1002, 1), c(1001, 2, "a"), c(1001, 3)},
			audit.History{Events: 4, Subjects: 2}},
		{"stored twice", []schemas.Record{c(1001, 1), c(1001, 2, "a"), c(1001, 2, "a")},
			audit.History{Events: 3, Subjects: 1, Duplicates: 1}},
		{"fork", []schemas.Record{c(1001, 1), c(1001, 2, "a"), forked},
			audit.History{Events: 3, Subjects: 1, Forks: 1}},
		{"hole", []schemas.Record{c(1001, 1), c(1001, 4, "a")},
			audit.History{Events: 2, Subjects: 1, Holes: 2}},
		{"other tenant ignored", []schemas.Record{c(1001, 1), schematest.CallsRecord("other", 1001, 5)},
			audit.History{Events: 1, Subjects: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := audit.CheckHistory("acme", msgs(tc.recs...))
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
	wrong := schematest.NewEvent(schemas.TypeAgentCalls, schemas.AgentCallsSubject("acme", 1002), 2,
		schemas.Change[schemas.AgentCalls]{Op: schemas.OpUpdate, Key: schemas.Key{Tenant: "acme", WorkNo: 1002}, Seq: 2,
			PrevID: schemas.EventID(schemas.AgentCallsSubject("acme", 1001), 1), After: &schemas.AgentCalls{CallIDs: []string{}}})
	h := audit.CheckHistory("acme", msgs(c(1002, 1), wrong))
	if h.BrokenLinks != 1 || len(h.Problems) != 1 || h.Clean() {
		t.Errorf("broken link: %+v", h)
	}
	if h := audit.CheckHistory("acme", []audit.Msg{{Subject: schemas.AgentCallsSubject("acme", 1001), Data: []byte("{")}}); h.Undecodable != 1 {
		t.Errorf("undecodable: %+v", h)
	}
}

// The final world is the last event per entity; a delete removes the
// entity; Diff names every entity that differs and treats no calls and an
// empty list alike.
func TestFinalWorldAndDiff(t *testing.T) {
	recs := []schemas.Record{
		schematest.CallsRecord("acme", 1001, 1),
		schematest.CallsRecord("acme", 1001, 2, "c1"),
		schematest.CallsRecord("acme", 1002, 1, "c2"),
		schematest.CallsRecord("acme", 1003, 1),
	}
	del := schematest.NewEvent(schemas.TypeAgentCalls, schemas.AgentCallsSubject("acme", 1003), 2,
		schemas.Change[schemas.AgentCalls]{Op: schemas.OpDelete, Key: schemas.Key{Tenant: "acme", WorkNo: 1003}, Seq: 2,
			PrevID: schemas.EventID(schemas.AgentCallsSubject("acme", 1003), 1), Before: &schemas.AgentCalls{CallIDs: []string{}}})
	phone := schematest.NewEvent(schemas.TypePhoneState, schemas.PhoneStateSubject("acme", "8888+1"), 1,
		schemas.Change[schemas.PhoneState]{Op: schemas.OpSnapshot, Key: schemas.Key{Tenant: "acme", PhoneNum: "8888+1"}, Seq: 1,
			After: &schemas.PhoneState{Status: schemas.PhoneSuspended, StatusCode: 1}})
	got, err := audit.FinalWorld("acme", msgs(append(recs, del, phone)...))
	if err != nil {
		t.Fatal(err)
	}
	want := audit.World{
		Calls:      map[int][]string{1001: {"c1"}, 1002: {"c2"}},
		Softphones: map[int]string{},
		Phones:     map[string]string{"8888+1": schemas.PhoneSuspended},
	}
	if d := audit.Diff(want, got); len(d) != 0 {
		t.Fatalf("final world differs from the history's end: %v", d)
	}
	want.Calls[1002] = nil
	want.Calls[1004] = nil
	want.Phones["8888+1"] = schemas.PhoneRegistered
	d := audit.Diff(want, got)
	wantDiff := []string{
		`agent 1002 calls: want [], got [c2]`,
		`agent 1004 calls: want [], got absent`,
		`phone 8888+1: want "registered", got "suspended"`,
	}
	if !slices.Equal(d, wantDiff) {
		t.Errorf("Diff = %q, want %q", d, wantDiff)
	}
	got.Calls[1002] = []string{}
	want.Calls[1004], got.Calls[1004] = []string{}, nil
	want.Phones["8888+1"] = schemas.PhoneSuspended
	if d := audit.Diff(want, got); len(d) != 0 {
		t.Errorf("no calls and [] differ: %v", d)
	}
}
