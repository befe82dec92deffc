package finalstate_test

import (
	"slices"
	"testing"

	"github.com/cecbridge/cecbridge/internal/finalstate"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

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
	got, err := finalstate.OfHistory("acme", finalstate.MsgsOf(append(recs, del, phone)...))
	if err != nil {
		t.Fatal(err)
	}
	want := finalstate.World{
		Calls:      map[int][]string{1001: {"c1"}, 1002: {"c2"}},
		Softphones: map[int]string{},
		Phones:     map[string]string{"8888+1": schemas.PhoneSuspended},
	}
	if d := finalstate.Diff(want, got); len(d) != 0 {
		t.Fatalf("final world differs from the history's end: %v", d)
	}
	want.Calls[1002] = nil
	want.Calls[1004] = nil
	want.Phones["8888+1"] = schemas.PhoneRegistered
	d := finalstate.Diff(want, got)
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
	if d := finalstate.Diff(want, got); len(d) != 0 {
		t.Errorf("no calls and [] differ: %v", d)
	}
}
