package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/audit"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

const tenant = "acme"

// doctored is a test stream that events are published to directly, as a
// faulty or hostile writer would.
type doctored struct {
	t  *testing.T
	js jetstream.JetStream
}

func newDoctored(t *testing.T, cfg jetstream.StreamConfig) *doctored {
	t.Helper()
	d := newDoctoredTB(t, cfg)
	d.t = t
	return d
}

func newDoctoredTB(tb testing.TB, cfg jetstream.StreamConfig) *doctored {
	tb.Helper()
	srv := natstest.RunServer(tb)
	js := natstest.JetStream(tb, srv.Connect(tb))
	cfg.Name, cfg.Subjects = audit.DefaultStream, []string{schemas.AllEvents}
	if _, err := js.CreateStream(context.Background(), cfg); err != nil {
		tb.Fatal(err)
	}
	return &doctored{js: js}
}

func (d *doctored) put(rec schemas.Record) uint64 {
	d.t.Helper()
	ack, err := d.js.Publish(d.t.Context(), rec.Subject, rec.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return ack.Sequence
}

// calls publishes the valid seq-th calls event of an agent.
func (d *doctored) calls(workNo int, seq uint64, callIDs ...string) uint64 {
	d.t.Helper()
	rec := schematest.CallsRecord(tenant, workNo, seq, callIDs...)
	schematest.ValidateEvent(d.t, rec.Body)
	return d.put(rec)
}

// change publishes a calls event built by hand, valid in shape but with
// whatever links and times the test wants.
func (d *doctored) change(workNo int, seq uint64, prevID string, afterPoll, byPoll time.Time) uint64 {
	d.t.Helper()
	subj := schemas.AgentCallsSubject(tenant, workNo)
	ch := schemas.Change[schemas.AgentCalls]{Op: schemas.OpUpdate, Key: schemas.Key{Tenant: tenant, WorkNo: workNo}, Seq: seq,
		PrevID: prevID, Before: &schemas.AgentCalls{CallIDs: []string{}}, After: &schemas.AgentCalls{CallIDs: []string{"x"}},
		Detected: schemas.Detected{AfterPoll: &afterPoll, ByPoll: byPoll}}
	rec := schematest.NewEvent(schemas.TypeAgentCalls, subj, seq, ch)
	schematest.ValidateEvent(d.t, rec.Body)
	return d.put(rec)
}

type found struct {
	kind      audit.Kind
	workNo    int
	streamSeq uint64
}

func kinds(rep *audit.Report) []found {
	var out []found
	for _, f := range rep.Findings {
		p, _ := schemas.ParseSubject(f.Subject)
		out = append(out, found{f.Kind, p.WorkNo, f.StreamSeq})
	}
	return out
}

func verify(t *testing.T, js jetstream.JetStream, r audit.Range) *audit.Report {
	t.Helper()
	var calls int
	rep, err := audit.Verify(t.Context(), js, r, func(done, total uint64) {
		calls++
		if done > total {
			t.Errorf("progress %d of %d", done, total)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Error("progress never reported")
	}
	return rep
}

// Verify finds each planted defect, on its subject and message, and only
// those: a clean subject next to them stays clean.
func TestVerifyFindsPlantedDefects(t *testing.T) {
	d := newDoctored(t, jetstream.StreamConfig{Storage: jetstream.MemoryStorage})
	base := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	callsSubj := func(w int) string { return schemas.AgentCallsSubject(tenant, w) }

	d.calls(1001, 1) // clean: 1, 2, 3
	d.calls(1001, 2, "a")

	d.calls(1002, 1) // hole: 3 never stored
	d.calls(1002, 2, "b")
	hole := d.calls(1002, 4, "b", "c")

	d.calls(1003, 1) // fork: two different messages with seq 2
	d.calls(1003, 2, "c")
	fork := d.calls(1003, 2, "other")

	d.calls(1004, 1) // broken link: seq 3 names seq 1 as its previous event
	d.calls(1004, 2, "d")
	broken := d.change(1004, 3, schemas.EventID(callsSubj(1004), 1), base.Add(2*time.Second), base.Add(4*time.Second))

	d.calls(1005, 1) // the same event stored twice
	d.calls(1005, 2, "e")
	dup := d.calls(1005, 2, "e")

	d.calls(1006, 1) // a detected window before the previous event's
	d.calls(1006, 2, "f")
	back := d.change(1006, 3, schemas.EventID(callsSubj(1006), 2), base, base.Add(time.Second))

	d.calls(1007, 1) // an id that belongs to another subject
	rec := schematest.CallsRecord(tenant, 1007, 2, "g")
	var ev map[string]any
	if err := json.Unmarshal(rec.Body, &ev); err != nil {
		t.Fatal(err)
	}
	ev["id"] = schemas.EventID(callsSubj(1001), 2)
	rec.Body, _ = json.Marshal(ev)
	badID := d.put(rec)

	garbage := d.put(schemas.Record{Subject: callsSubj(1008), Body: []byte("not json")})
	d.calls(1001, 3, "a", "z")

	rep := verify(t, d.js, audit.Range{})
	want := []found{
		{audit.KindHole, 1002, hole},
		{audit.KindFork, 1003, fork},
		{audit.KindBrokenLink, 1004, broken},
		{audit.KindDuplicate, 1005, dup},
		{audit.KindBackwards, 1006, back},
		{audit.KindBadID, 1007, badID},
		{audit.KindUndecodable, 1008, garbage},
	}
	if got := kinds(rep); !slices.Equal(got, want) {
		t.Fatalf("findings\n got %v\nwant %v\n%v", got, want, rep.Findings)
	}
	if rep.OK() || rep.Defects != len(want) || rep.Events != 21 || rep.Subjects != 7 || rep.FirstStreamSeq != 1 || rep.LastStreamSeq != 21 {
		t.Fatalf("report %+v", rep)
	}

	// From the middle of the stream, the first event of a subject is not
	// judged against what the walk did not read; what follows still is.
	rep = verify(t, d.js, audit.Range{StartSeq: hole, Filter: schemas.TenantEvents(tenant)})
	if got := kinds(rep); !slices.Equal(got, want[1:]) {
		t.Fatalf("from seq %d: %v", hole, got)
	}
	// A filter keeps to its subjects.
	rep = verify(t, d.js, audit.Range{Filter: callsSubj(1001)})
	if !rep.OK() || rep.Events != 3 || rep.Subjects != 1 {
		t.Fatalf("clean subject: %+v", rep)
	}
}

// A subject whose first stored event is past seq 1 is a retention cut when
// the stream has aged messages out, and a hole when it has lost nothing.
func TestVerifyTellsRetentionCutsFromHoles(t *testing.T) {
	d := newDoctored(t, jetstream.StreamConfig{Storage: jetstream.MemoryStorage, MaxMsgs: 4, Discard: jetstream.DiscardOld})
	for seq := uint64(1); seq <= 6; seq++ {
		d.calls(1001, seq, fmt.Sprint("c", seq))
	}
	rep := verify(t, d.js, audit.Range{})
	if !rep.OK() || rep.RetentionCuts != 1 || rep.StreamFirstSeq != 3 || rep.Findings[0].Kind != audit.KindRetentionCut || rep.Findings[0].Seq != 3 {
		t.Fatalf("trimmed stream: %+v", rep)
	}

	d = newDoctored(t, jetstream.StreamConfig{Storage: jetstream.MemoryStorage})
	d.calls(1001, 3, "c")
	d.calls(1001, 4, "c", "d")
	rep = verify(t, d.js, audit.Range{})
	if rep.OK() || len(rep.Findings) != 1 || rep.Findings[0].Kind != audit.KindHole {
		t.Fatalf("untrimmed stream: %+v", rep)
	}
}

func TestVerifyRejectsBadRanges(t *testing.T) {
	d := newDoctored(t, jetstream.StreamConfig{Storage: jetstream.MemoryStorage})
	_, err := audit.Verify(t.Context(), d.js, audit.Range{StartSeq: 3, StartTime: time.Now()}, nil)
	if !errors.Is(err, audit.ErrBadRange) {
		t.Fatalf("seq and time: %v", err)
	}
	_, err = audit.Verify(context.Background(), d.js, audit.Range{Stream: "NOPE"}, nil)
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("missing stream: %v", err)
	}
	rep, err := audit.Verify(t.Context(), d.js, audit.Range{}, nil)
	if err != nil || !rep.OK() || rep.Events != 0 {
		t.Fatalf("empty stream: %+v %v", rep, err)
	}
}
