package publisher_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

func TestPublishInOrder(t *testing.T) {
	e := newEnv(t, publisher.Config{})
	p, wr := e.start(t, publisher.Config{MaxInFlight: 8})
	want := map[string]uint64{}
	for seq := uint64(1); seq <= 20; seq++ {
		for w := 101; w < 111; w++ {
			rec := schematest.CallsRecord("acme", w, seq, fmt.Sprintf("c-%d-%d", w, seq))
			emit(t, wr, rec)
			want[rec.Subject] = seq
		}
	}
	flush(t, p, 20*time.Second)
	checkChains(t, readStream(t, e.js, publisher.DefaultEventsStream), want)
	st := p.Stats()
	if st.Published != 200 || st.Duplicates != 0 || st.Conflicts != 0 || st.InFlight != 0 || st.Buffered != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestProvisionIdempotent(t *testing.T) {
	e := newEnv(t, publisher.Config{MaxAge: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := publisher.Provision(ctx, e.js, publisher.Config{MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	// An update (new retention) applies in place when asked for.
	if err := publisher.Provision(ctx, e.js, publisher.Config{MaxAge: 2 * time.Hour, UpdateExisting: true}); err != nil {
		t.Fatal(err)
	}
	s, err := e.js.Stream(ctx, publisher.DefaultEventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 2*time.Hour {
		t.Errorf("MaxAge = %s", got)
	}
	st, err := e.js.Stream(ctx, publisher.DefaultStateStream)
	if err != nil {
		t.Fatal(err)
	}
	c := st.CachedInfo().Config
	if c.MaxMsgsPerSubject != 1 || c.MaxAge != 0 || len(c.Sources) != 1 || c.Sources[0].Name != publisher.DefaultEventsStream || !c.AllowDirect {
		t.Errorf("state stream config %+v", c)
	}
	if _, _, err := publisher.StreamConfigs(publisher.Config{MaxAge: time.Second, DuplicateWindow: time.Minute}); !errors.Is(err, publisher.ErrConfig) {
		t.Errorf("window > MaxAge: err = %v, want ErrConfig", err)
	}
}

// An earlier attempt was stored but its ack was lost: the retry (same
// Msg-Id, same expected sequence) must not store a second copy. On a single
// server the expected-sequence check runs before the duplicate check, so
// the retry is refused with "wrong last sequence" and the publisher must
// recognise its own message as the subject's last.
func TestAmbiguousRetryStoresOnce(t *testing.T) {
	e := newEnv(t, publisher.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, w := e.start(t, publisher.Config{})
	first := schematest.CallsRecord("acme", 101, 1, "a")
	emit(t, w, first)
	flush(t, p, 10*time.Second)
	firstSeq := readStream(t, e.js, publisher.DefaultEventsStream)[first.Subject][0].seq

	// The lost-ack attempt of the second record, as it reached the stream.
	second := schematest.CallsRecord("acme", 101, 2, "b")
	if _, err := e.js.Publish(ctx, second.Subject, second.Body, jetstream.WithMsgID(second.ID),
		jetstream.WithExpectLastSequencePerSubject(firstSeq)); err != nil {
		t.Fatal(err)
	}
	emit(t, w, second)
	third := schematest.CallsRecord("acme", 101, 3, "c")
	emit(t, w, third)
	flush(t, p, 10*time.Second)
	checkChains(t, readStream(t, e.js, publisher.DefaultEventsStream), map[string]uint64{first.Subject: 3})
	st := p.Stats()
	if st.Published != 3 || st.Duplicates != 1 || st.Conflicts != 0 {
		t.Errorf("stats %+v, want 3 published of which 1 duplicate", st)
	}

	// Inside the duplicate window with an up-to-date expected sequence the
	// server answers "duplicate" directly: a fresh publisher (no Load) on a
	// new subject whose first record was already stored.
	other := schematest.CallsRecord("acme", 102, 1, "x")
	if _, err := e.js.Publish(ctx, other.Subject, other.Body, jetstream.WithMsgID(other.ID)); err != nil {
		t.Fatal(err)
	}
	p2, w2 := e.start(t, publisher.Config{})
	emit(t, w2, other)
	flush(t, p2, 10*time.Second)
	if n := len(readStream(t, e.js, publisher.DefaultEventsStream)[other.Subject]); n != 1 {
		t.Errorf("%s stored %d times", other.Subject, n)
	}
	if st := p2.Stats(); st.Published != 1 || st.Duplicates != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestSecondWriterConflict(t *testing.T) {
	e := newEnv(t, publisher.Config{})
	p := e.newPublisher(t, publisher.Config{})
	e.run(t, p)
	conflicts := make(chan string, 4)
	w := p.NewWriter(publisher.WriterConfig{OnConflict: func(s string) { conflicts <- s }})
	rec1 := schematest.CallsRecord("acme", 101, 1, "a")
	emit(t, w, rec1)
	flush(t, w, 10*time.Second)

	// Another bridge, which believes it owns agent 101, writes its seq 2.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	theirs := schematest.CallsRecord("acme", 101, 2, "theirs")
	theirs.ID = "other-writer-2"
	ack, err := e.js.Publish(ctx, theirs.Subject, theirs.Body, jetstream.WithMsgID(theirs.ID))
	if err != nil {
		t.Fatal(err)
	}
	// Our seq 2 and 3 are now a fork: both dropped, one callback.
	emit(t, w, schematest.CallsRecord("acme", 101, 2, "ours"))
	emit(t, w, schematest.CallsRecord("acme", 101, 3, "ours"))
	other := schematest.CallsRecord("acme", 102, 1, "x")
	emit(t, w, other)
	flush(t, w, 10*time.Second)

	select {
	case subj := <-conflicts:
		if subj != rec1.Subject {
			t.Errorf("OnConflict(%s)", subj)
		}
	default:
		t.Fatal("OnConflict not called")
	}
	if len(conflicts) != 0 {
		t.Errorf("%d more OnConflict calls; the subject is blocked after the first", len(conflicts))
	}
	got := readStream(t, e.js, publisher.DefaultEventsStream)
	if n := len(got[rec1.Subject]); n != 2 || got[rec1.Subject][1].msgID != theirs.ID {
		t.Fatalf("subject history forked: %+v", got[rec1.Subject])
	}
	checkChains(t, got, map[string]uint64{other.Subject: 1})
	if st := p.Stats(); st.Conflicts != 2 || st.Published != 2 {
		t.Errorf("stats %+v, want 2 conflicts 2 published", st)
	}
	// Until the subject is re-read, records of it are dropped.
	emit(t, w, schematest.CallsRecord("acme", 101, 4, "stale"))
	flush(t, w, 10*time.Second)
	if st := p.Stats(); st.Conflicts != 3 {
		t.Errorf("stale record after conflict: stats %+v", st)
	}
	// Having re-read, the poller continues from the other writer's event.
	last, err := w.Latest(ctx, rec1.Subject)
	if err != nil || last == nil || last.StreamSeq != ack.Sequence || string(last.Body) != string(theirs.Body) || last.Event.Subject != rec1.Subject {
		t.Fatalf("Latest after conflict: %+v, %v", last, err)
	}
	w.Prime(rec1.Subject, last.StreamSeq)
	emit(t, w, schematest.CallsRecord("acme", 101, 3, "after"))
	flush(t, w, 10*time.Second)
	if got := readStream(t, e.js, publisher.DefaultEventsStream)[rec1.Subject]; len(got) != 3 || got[2].data.Seq != 3 {
		t.Fatalf("publish after conflict: %+v", got)
	}
}

func TestServerRestartMidRun(t *testing.T) {
	e := newEnv(t, publisher.Config{})
	p, wr := e.start(t, publisher.Config{MaxInFlight: 64, AckTimeout: time.Second})
	const subjects = 20
	want := map[string]uint64{}
	var mu sync.Mutex
	emitted := 0
	emitN := func(from, to uint64) {
		for seq := from; seq <= to; seq++ {
			for w := 101; w < 101+subjects; w++ {
				rec := schematest.CallsRecord("acme", w, seq, "c")
				emit(t, wr, rec)
				mu.Lock()
				want[rec.Subject] = seq
				emitted++
				mu.Unlock()
			}
		}
	}
	emitN(1, 20)
	e.srv.Shutdown() // records keep being accepted while NATS is away
	emitN(21, 30)
	e.srv.Start()
	emitN(31, 40)
	flush(t, p, 30*time.Second)
	got := readStream(t, e.js, publisher.DefaultEventsStream)
	checkChains(t, got, want)
	total := 0
	for _, m := range got {
		total += len(m)
	}
	if total != emitted {
		t.Errorf("stored %d, emitted %d", total, emitted)
	}
	if st := p.Stats(); st.Published != uint64(emitted) || st.Conflicts != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestBufferFull(t *testing.T) {
	e := newEnv(t, publisher.Config{})
	p := e.newPublisher(t, publisher.Config{BufferEvents: 5}) // not running: nothing drains
	w := p.NewWriter(publisher.WriterConfig{})
	for seq := uint64(1); seq <= 5; seq++ {
		emit(t, w, schematest.CallsRecord("acme", 101, seq, "c"))
	}
	err := w.Emit(context.Background(), schematest.CallsRecord("acme", 101, 6, "c"))
	if !errors.Is(err, publisher.ErrBufferFull) {
		t.Fatalf("Emit past the bound: %v, want ErrBufferFull", err)
	}
	if st := p.Stats(); st.Refused != 1 || st.Buffered != 5 {
		t.Errorf("stats %+v", st)
	}
	// Once running, the five accepted records go out and room returns.
	e.run(t, p)
	flush(t, p, 10*time.Second)
	emit(t, w, schematest.CallsRecord("acme", 101, 6, "c"))
	flush(t, p, 10*time.Second)
	checkChains(t, readStream(t, e.js, publisher.DefaultEventsStream), map[string]uint64{schemas.AgentCallsSubject("acme", 101): 6})
}

func TestSpoolDrainsInOrder(t *testing.T) {
	e := newEnv(t, publisher.Config{})
	dir := t.TempDir()
	cfg := publisher.Config{BufferEvents: 4, SpoolDir: dir, SpoolMaxBytes: 64 << 10}
	p := e.newPublisher(t, cfg)
	wr := p.NewWriter(publisher.WriterConfig{})
	want := map[string]uint64{}
	n := 0
	var refused error
	for seq := uint64(1); refused == nil; seq++ {
		for w := 101; w < 104; w++ {
			rec := schematest.CallsRecord("acme", w, seq, "c")
			if refused = wr.Emit(context.Background(), rec); refused != nil {
				break
			}
			want[rec.Subject] = seq
			n++
		}
	}
	if !errors.Is(refused, publisher.ErrBufferFull) {
		t.Fatalf("Emit with full spool: %v", refused)
	}
	st := p.Stats()
	if st.Buffered != 4 || st.Spooled != n-4 || st.Refused != 1 {
		t.Fatalf("stats before run %+v (accepted %d)", st, n)
	}
	// A refused record leaves a hole in its subject's sequence; the poller
	// would re-detect it. Here the chains stop where the refusal happened.
	e.run(t, p)
	flush(t, p, 20*time.Second)
	checkChains(t, readStream(t, e.js, publisher.DefaultEventsStream), want)
	if st := p.Stats(); st.Published != uint64(n) || st.Spooled != 0 {
		t.Errorf("stats after drain %+v", st)
	}
}

func TestSpoolOfAnEarlierRunIsDiscarded(t *testing.T) {
	e := newEnv(t, publisher.Config{})
	dir := t.TempDir()
	cfg := publisher.Config{BufferEvents: 1, SpoolDir: dir}
	p1 := e.newPublisher(t, cfg)
	w1 := p1.NewWriter(publisher.WriterConfig{})
	for seq := uint64(1); seq <= 10; seq++ {
		emit(t, w1, schematest.CallsRecord("acme", 101, seq, "c"))
	}
	// p1 never runs (a crash): its record in memory died with it, so its
	// spool (seq 2-10) would leave a hole at seq 1. The next publisher
	// discards it; the poller re-detects the state from the stream.
	p2 := e.newPublisher(t, cfg)
	if st := p2.Stats(); st.Spooled != 0 {
		t.Fatalf("spool kept %d records of the earlier run", st.Spooled)
	}
	e.run(t, p2)
	w2 := p2.NewWriter(publisher.WriterConfig{})
	emit(t, w2, schematest.CallsRecord("acme", 101, 1, "c"))
	flush(t, p2, 10*time.Second)
	got := readStream(t, e.js, publisher.DefaultEventsStream)[schemas.AgentCallsSubject("acme", 101)]
	if len(got) != 1 || got[0].data.Seq != 1 {
		t.Fatalf("stored %d messages (first seq %v), want only seq 1", len(got), got)
	}
}

func TestLoadAfterEventsAgedOut(t *testing.T) {
	cfg := publisher.Config{MaxAge: time.Second, DuplicateWindow: 500 * time.Millisecond}
	e := newEnv(t, cfg)
	_, w := e.start(t, cfg)
	rec := schematest.CallsRecord("acme", 101, 1, "a")
	emit(t, w, rec)
	flush(t, w, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	testwait.For(t, 15*time.Second, "events to age out", func() bool {
		s, err := e.js.Stream(ctx, publisher.DefaultEventsStream)
		return err == nil && s.CachedInfo().State.Msgs == 0
	})
	testwait.For(t, 5*time.Second, "state stream to hold the event", func() bool {
		s, err := e.js.Stream(ctx, publisher.DefaultStateStream)
		return err == nil && s.CachedInfo().State.Msgs == 1
	})

	p2, w2 := e.start(t, cfg) // a restarted bridge
	state, err := w2.Load(ctx, schemas.TenantEvents("acme"))
	if err != nil {
		t.Fatal(err)
	}
	l, ok := state[rec.Subject]
	if !ok || l.StreamSeq != 0 || string(l.Body) != string(rec.Body) || l.Event.ID != rec.ID {
		t.Fatalf("Load = %+v", state)
	}
	// Latest finds it in the state stream too.
	if last, err := w2.Latest(ctx, rec.Subject); err != nil || last == nil || last.StreamSeq != 0 || last.Event.ID != rec.ID {
		t.Fatalf("Latest = %+v, %v", last, err)
	}
	next := schematest.CallsRecord("acme", 101, 2, "b")
	emit(t, w2, next)
	flush(t, w2, 10*time.Second)
	if st := p2.Stats(); st.Published != 1 || st.Conflicts != 0 {
		t.Fatalf("publish after age-out: %+v", st)
	}
}

func TestLoadCatchesUpUnsourced(t *testing.T) {
	e := newEnv(t, publisher.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Make the state stream lag for agent 102 by sourcing only agent 101.
	_, state, _ := publisher.StreamConfigs(publisher.Config{})
	state.Sources[0].FilterSubject = schemas.AgentCallsSubject("acme", 101)
	if _, err := e.js.UpdateStream(ctx, state); err != nil {
		t.Fatal(err)
	}
	_, w := e.start(t, publisher.Config{})
	for seq := uint64(1); seq <= 3; seq++ {
		emit(t, w, schematest.CallsRecord("acme", 101, seq, "a"))
		emit(t, w, schematest.CallsRecord("acme", 102, seq, "b"))
	}
	flush(t, w, 10*time.Second)
	testwait.For(t, 5*time.Second, "state stream to source agent 101", func() bool {
		s, err := e.js.Stream(ctx, publisher.DefaultStateStream)
		return err == nil && s.CachedInfo().State.LastSeq >= 3
	})
	events := readStream(t, e.js, publisher.DefaultEventsStream)

	p2, w2 := e.start(t, publisher.Config{})
	got, err := w2.Load(ctx, schemas.TenantEvents("acme"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{101, 102} {
		subj := schemas.AgentCallsSubject("acme", w)
		last := events[subj][2]
		l := got[subj]
		if l.StreamSeq != last.seq || l.Event.ID != schemas.EventID(subj, 3) {
			t.Errorf("%s: Load %+v, want seq %d", subj, l, last.seq)
		}
	}
	// Expected sequences were primed: the next records go out cleanly.
	emit(t, w2, schematest.CallsRecord("acme", 101, 4, "a"))
	emit(t, w2, schematest.CallsRecord("acme", 102, 4, "b"))
	flush(t, w2, 10*time.Second)
	if st := p2.Stats(); st.Published != 2 || st.Conflicts != 0 || st.Retries != 0 {
		t.Fatalf("stats %+v", st)
	}
}
