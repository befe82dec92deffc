package publisher_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// gate is a Gate a test opens and closes.
type gate struct {
	mu      sync.Mutex
	open    bool
	changed chan struct{}
}

func newGate(open bool) *gate { return &gate{open: open, changed: make(chan struct{})} }

func (g *gate) Valid() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

func (g *gate) Changed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

func (g *gate) set(open bool) {
	g.mu.Lock()
	g.open = open
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
}

// termEnv is a server whose client does not buffer while disconnected (as
// the bridge's does not) and a running publisher.
func termEnv(t *testing.T, cfg publisher.Config) (*natstest.Server, jetstream.JetStream, *publisher.Publisher) {
	t.Helper()
	s := natstest.RunServer(t)
	js := natstest.JetStream(t, s.Connect(t, nats.ReconnectBufSize(-1)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := publisher.Provision(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	p, err := publisher.New(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: s, js: js}
	e.run(t, p)
	return s, js, p
}

// A term's leftover records (queued in memory, spooled, in flight) never
// reach the stream once End returned, even when the same process wins the
// lease again at once: the new term's seq 1 is the only seq 1, and every
// event id is stored with one content.
func TestEndedTermsRecordsNeverReachTheStream(t *testing.T) {
	cfg := publisher.Config{BufferEvents: 8, SpoolDir: t.TempDir(), AckTimeout: time.Second}
	srv, js, p := termEnv(t, cfg)
	old := p.NewWriter(publisher.WriterConfig{Term: "t1"})

	srv.Shutdown()
	// 30 records: 8 in memory, the rest in the spool; none can be sent.
	for w := 101; w < 131; w++ {
		emit(t, old, schematest.CallsRecord("acme", w, 1, "stale"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := old.End(ctx); err != nil {
		t.Fatalf("End: %v", err)
	}
	if err := old.Emit(ctx, schematest.CallsRecord("acme", 101, 2, "late")); !errors.Is(err, publisher.ErrTermEnded) {
		t.Fatalf("Emit after End: %v, want ErrTermEnded", err)
	}
	srv.Start()
	testwait.For(t, 10*time.Second, "the client to reconnect", js.Conn().IsConnected)

	// The same process leads again: a new term loads (nothing) and writes.
	cur := p.NewWriter(publisher.WriterConfig{Term: "t2"})
	if _, err := cur.Load(ctx, schemas.TenantEvents("acme")); err != nil {
		t.Fatal(err)
	}
	for w := 101; w < 131; w++ {
		emit(t, cur, schematest.CallsRecord("acme", w, 1, "fresh"))
	}
	flush(t, cur, 20*time.Second)
	flush(t, p, 20*time.Second) // the spooled records of t1 are read and dropped

	got := readStream(t, js, publisher.DefaultEventsStream)
	for w := 101; w < 131; w++ {
		subj := schemas.AgentCallsSubject("acme", w)
		msgs := got[subj]
		if len(msgs) != 1 || !strings.HasSuffix(msgs[0].msgID, ".t2") || msgs[0].data.After.CallIDs[0] != "fresh" {
			t.Fatalf("%s holds %+v, want only the new term's event", subj, msgs)
		}
	}
	if st := p.Stats(); st.Fenced != 30 || st.Published != 30 {
		t.Errorf("stats %+v, want 30 fenced and 30 published", st)
	}
}

// Records wait while the writer's gate is closed (its lease unconfirmed)
// and go out, in order, once it opens.
func TestRecordsWaitForTheirTermsValidity(t *testing.T) {
	_, js, p := termEnv(t, publisher.Config{})
	g := newGate(false)
	w := p.NewWriter(publisher.WriterConfig{Term: "t1", Gate: g})
	for seq := uint64(1); seq <= 5; seq++ {
		emit(t, w, schematest.CallsRecord("acme", 101, seq, "c"))
	}
	emit(t, w, schematest.CallsRecord("acme", 102, 1, "c"))
	testwait.For(t, 5*time.Second, "records to be held", func() bool { return p.Stats().Held == 2 })
	if n := len(readStream(t, js, publisher.DefaultEventsStream)); n != 0 {
		t.Fatalf("%d subjects written while the gate was closed", n)
	}
	g.set(true)
	flush(t, w, 10*time.Second)
	got := readStream(t, js, publisher.DefaultEventsStream)
	if len(got[schemas.AgentCallsSubject("acme", 101)]) != 5 || len(got[schemas.AgentCallsSubject("acme", 102)]) != 1 {
		t.Fatalf("after the gate opened: %d subjects", len(got))
	}
	if st := p.Stats(); st.Held != 0 || st.Published != 6 {
		t.Errorf("stats %+v", st)
	}
}

// Ending a term whose records wait behind a closed gate drops them at once.
func TestEndingAHeldTermDropsItsRecords(t *testing.T) {
	_, js, p := termEnv(t, publisher.Config{})
	w := p.NewWriter(publisher.WriterConfig{Term: "t1", Gate: newGate(false)})
	for seq := uint64(1); seq <= 3; seq++ {
		emit(t, w, schematest.CallsRecord("acme", 101, seq, "c"))
	}
	testwait.For(t, 5*time.Second, "a record to be held", func() bool { return p.Stats().Held == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.End(ctx); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Fenced != 3 || st.Held != 0 || st.Buffered != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n := len(readStream(t, js, publisher.DefaultEventsStream)); n != 0 {
		t.Fatalf("%d subjects written by an ended term", n)
	}
}

// One publish whose ack never comes holds back nothing but itself: the
// records sent after it are stored and acknowledged meanwhile (acks used to
// be awaited in send order, so one lost ack delayed every later result by
// the whole ack timeout).
func TestALostAckHoldsBackOnlyItsOwnRecord(t *testing.T) {
	s, js, p := termEnv(t, publisher.Config{AckTimeout: 5 * time.Second})
	// A subject outside the stream with a silent listener: the publish is
	// delivered, nobody acknowledges it.
	nc := s.Connect(t)
	sub, err := nc.SubscribeSync("lost.ack")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	w := p.NewWriter(publisher.WriterConfig{Term: "t1"})
	lost := schematest.CallsRecord("acme", 100, 1, "x")
	lost.Subject = "lost.ack"
	if err := w.Emit(context.Background(), lost); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("the silent publish was not sent first: %v", err)
	}
	for wn := 101; wn < 201; wn++ {
		emit(t, w, schematest.CallsRecord("acme", wn, 1, "c"))
	}
	// Well within the ack timeout, all 100 are acknowledged.
	testwait.For(t, 2500*time.Millisecond, "100 acks behind the lost one", func() bool { return p.Stats().Published == 100 })
	if st := p.Stats(); st.InFlight != 1 {
		t.Fatalf("stats %+v, want the lost one still in flight", st)
	}
	if n := len(readStream(t, js, publisher.DefaultEventsStream)); n != 100 {
		t.Fatalf("%d subjects stored", n)
	}
}

// After NATS comes back, a writer that kept its term checks that nobody
// published on its subjects meanwhile; a foreign message is reported.
func TestUnchallengedSeesAForeignWrite(t *testing.T) {
	_, js, p := termEnv(t, publisher.Config{})
	w := p.NewWriter(publisher.WriterConfig{Term: "t1"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	filter := schemas.TenantEvents("acme")
	if err := w.Unchallenged(ctx, filter); err != nil {
		t.Fatalf("empty stream: %v", err)
	}
	// Before its Load the writer holds nothing a foreign write could make
	// stale: the Load will read it.
	early := schematest.CallsRecord("acme", 103, 1, "c")
	if _, err := js.Publish(ctx, early.Subject, early.Body, jetstream.WithMsgID(early.ID+".t0")); err != nil {
		t.Fatal(err)
	}
	if err := w.Unchallenged(ctx, filter); err != nil {
		t.Fatalf("a write before the writer's Load: %v", err)
	}
	if _, err := w.Load(ctx, filter); err != nil {
		t.Fatal(err)
	}
	if err := w.Unchallenged(ctx, filter); err != nil {
		t.Fatalf("a write the Load read: %v", err)
	}
	emit(t, w, schematest.CallsRecord("acme", 101, 1, "c"))
	flush(t, w, 10*time.Second)
	if err := w.Unchallenged(ctx, filter); err != nil {
		t.Fatalf("own last message: %v", err)
	}
	// Another tenant's message does not count.
	if _, err := js.Publish(ctx, schemas.AgentCallsSubject("other", 101), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := w.Unchallenged(ctx, filter); err != nil {
		t.Fatalf("another tenant's message: %v", err)
	}
	theirs := schematest.CallsRecord("acme", 102, 1, "c")
	if _, err := js.Publish(ctx, theirs.Subject, theirs.Body, jetstream.WithMsgID(theirs.ID+".t9")); err != nil {
		t.Fatal(err)
	}
	if err := w.Unchallenged(ctx, filter); !errors.Is(err, publisher.ErrForeignWrite) {
		t.Fatalf("after a foreign write: %v, want ErrForeignWrite", err)
	}
}

// Run is a one-off: a second call is refused, even after the first ended.
func TestRunRefusesASecondCall(t *testing.T) {
	e := newEnv(t, publisher.Config{})
	p := e.newPublisher(t, publisher.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); !errors.Is(err, publisher.ErrRunning) {
		t.Fatalf("second Run: %v, want ErrRunning", err)
	}
}

// An old holder that still writes while the new one loads must not make
// Load prime a sequence newer than the state it returns: the new holder's
// next event would then be accepted on top of an event it never saw (two
// seq-2 events on one subject). The refused record is reported instead.
func TestLoadPrimesOnlyWhatItLoaded(t *testing.T) {
	_, js, p := termEnv(t, publisher.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := schematest.CallsRecord("acme", 101, 1, "a")
	if _, err := js.Publish(ctx, first.Subject, first.Body, jetstream.WithMsgID(first.ID+".old")); err != nil {
		t.Fatal(err)
	}
	conflicts := make(chan string, 1)
	w := p.NewWriter(publisher.WriterConfig{Term: "new", OnConflict: func(s string) { conflicts <- s }})
	theirs := schematest.CallsRecord("acme", 101, 2, "theirs")
	publisher.SetLoadCaughtUpHook(func() {
		// The old holder's seq 2 lands between Load's reads.
		if _, err := js.Publish(ctx, theirs.Subject, theirs.Body, jetstream.WithMsgID(theirs.ID+".old")); err != nil {
			t.Error(err)
		}
	})
	state, err := w.Load(ctx, schemas.TenantEvents("acme"))
	publisher.SetLoadCaughtUpHook(nil)
	if err != nil {
		t.Fatal(err)
	}
	var loaded schemas.Change[schemas.AgentCalls]
	if err := json.Unmarshal(state[first.Subject].Event.Data, &loaded); err != nil || loaded.Seq != 1 {
		t.Fatalf("Load returned seq %d (%v), want the state it read first (seq 1)", loaded.Seq, err)
	}
	// The new holder's next event, built on the state it loaded.
	emit(t, w, schematest.CallsRecord("acme", 101, 2, "ours"))
	flush(t, w, 10*time.Second)
	msgs := readStream(t, js, publisher.DefaultEventsStream)[first.Subject]
	if len(msgs) != 2 || msgs[1].data.After.CallIDs[0] != "theirs" {
		t.Fatalf("subject holds %d events, last %+v: forked", len(msgs), msgs[len(msgs)-1].data)
	}
	select {
	case s := <-conflicts:
		if s != first.Subject {
			t.Fatalf("conflict on %s", s)
		}
	default:
		t.Fatal("the refused record was not reported")
	}
}

// A predecessor that still writes after the new term loaded leaves
// subjects the new term believes it knows; Stray names them (and only
// them: not the writer's own later events, not older ones).
func TestStrayNamesSubjectsWrittenByOthersAfterLoad(t *testing.T) {
	_, js, p := termEnv(t, publisher.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old := schematest.CallsRecord("acme", 101, 1, "a")
	if _, err := js.Publish(ctx, old.Subject, old.Body, jetstream.WithMsgID(old.ID+".old")); err != nil {
		t.Fatal(err)
	}
	w := p.NewWriter(publisher.WriterConfig{Term: "new"})
	if _, err := w.Load(ctx, schemas.TenantEvents("acme")); err != nil {
		t.Fatal(err)
	}
	// Our own event, and the old term waking up on another subject.
	emit(t, w, schematest.CallsRecord("acme", 102, 1, "ours"))
	flush(t, w, 10*time.Second)
	late := schematest.CallsRecord("acme", 103, 1, "late")
	if _, err := js.Publish(ctx, late.Subject, late.Body, jetstream.WithMsgID(late.ID+".old")); err != nil {
		t.Fatal(err)
	}
	stray, err := w.Stray(ctx, schemas.TenantEvents("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if len(stray) != 1 || stray[0] != late.Subject {
		t.Fatalf("Stray = %v, want only %s", stray, late.Subject)
	}
}
