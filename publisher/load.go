package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/schemas"
)

func latestFrom(subject string, seq uint64, body []byte) *schemas.Stored {
	l := &schemas.Stored{Subject: subject, StreamSeq: seq, Body: body}
	// A body that is not an event leaves Event zero; Body still says what
	// the stream holds.
	_ = json.Unmarshal(body, &l.Event)
	return l
}

// Load returns the current state of every subject under filter (for
// example "cec.evt.acme.>") and primes the writer's expected sequences with
// what it loaded. Call it before the writer emits records for those
// subjects, and after the previous term's writer has ended.
//
// It reads the last message per subject of the state stream, then the
// events stream past the highest origin sequence seen there (sourcing is
// asynchronous and may lag), then the last sequence per subject of the
// events stream (headers only), which tells the subjects whose events have
// aged out (their state keeps StreamSeq 0).
//
// A subject is primed with the sequence of the very message its state was
// loaded from, never with a later one: if another writer is still
// publishing while Load reads, the stream moves on past what was loaded,
// the writer's next record on that subject is refused, and the subject is
// re-read (see WriterConfig.OnConflict), instead of a record built on stale
// state being accepted after a message it never saw.
func (w *Writer) Load(ctx context.Context, filter string) (map[string]schemas.Stored, error) {
	p := w.p
	// What the leader holds now is what Load must have read: the reads
	// below go through ordered consumers, which on a replicated stream a
	// follower may serve from behind.
	mark, err := p.leaderMark(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make(map[string]schemas.Stored)
	var maxOrigin uint64
	err = p.read(ctx, p.cfg.StateStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	}, func(m jetstream.Msg) {
		seq := schemas.OriginSeq(m.Headers().Get(schemas.SourceHeader))
		maxOrigin = max(maxOrigin, seq)
		out[m.Subject()] = *latestFrom(m.Subject(), seq, m.Data())
	})
	if err != nil {
		return nil, err
	}

	// Catch up on what the state stream has not sourced yet.
	cc := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}
	if maxOrigin > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, maxOrigin+1
	} else {
		// Nothing sourced yet: the last message per subject is enough.
		cc.DeliverPolicy = jetstream.DeliverLastPerSubjectPolicy
	}
	seen := maxOrigin
	catchUp := func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		seen = max(seen, md.Sequence.Stream)
		out[m.Subject()] = *latestFrom(m.Subject(), md.Sequence.Stream, m.Data())
	}
	if err = p.read(ctx, p.cfg.EventsStream, cc, catchUp); err != nil {
		return nil, err
	}
	for tries := 0; seen < mark; tries++ {
		// A follower answered and had not caught up with the leader: read
		// on from where it stopped, once it has had a moment.
		if err := followerWait(ctx, tries, mark, seen); err != nil {
			return nil, fmt.Errorf("publisher: load %s: %w", p.cfg.EventsStream, err)
		}
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seen+1
		if err = p.read(ctx, p.cfg.EventsStream, cc, catchUp); err != nil {
			return nil, err
		}
	}

	if loadCaughtUp != nil {
		loadCaughtUp()
	}
	// Which subjects does the events stream still hold at all?
	// (A follower behind the leader would miss subjects it does not have
	// yet: read until the last message read is the leader's mark.)
	var held map[string]bool
	for tries, heldUpTo := 0, uint64(0); held == nil || heldUpTo < mark; tries++ {
		if held != nil {
			if err := followerWait(ctx, tries-1, mark, heldUpTo); err != nil {
				return nil, fmt.Errorf("publisher: load %s: %w", p.cfg.EventsStream, err)
			}
		}
		held = make(map[string]bool, len(out))
		err = p.read(ctx, p.cfg.EventsStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{filter},
			DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
			HeadersOnly:    true,
		}, func(m jetstream.Msg) {
			held[m.Subject()] = true
			if md, err := m.Metadata(); err == nil {
				heldUpTo = max(heldUpTo, md.Sequence.Stream)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	prime := make(map[string]uint64, len(out))
	var upTo uint64
	for subj, l := range out {
		upTo = max(upTo, l.StreamSeq)
		if !held[subj] {
			// Aged out: the next publish must expect an empty subject.
			l.StreamSeq = 0
			out[subj] = l
		}
		prime[subj] = l.StreamSeq
	}
	upTo = max(upTo, maxOrigin)
	w.loadedUpTo.Store(max(w.loadedUpTo.Load(), upTo))
	w.loaded.Store(true)
	p.mu.Lock()
	for k, v := range prime {
		w.primes[k] = v
	}
	p.mu.Unlock()
	p.wakeUp()
	return out, nil
}

// Stray lists the subjects under filter whose last message was written
// after this writer's Load by someone else: another term (a predecessor
// that was still writing when this one took over, say a paused process
// that woke up). The writer's view of those subjects is stale; the caller
// re-reads them (as after a conflict). Call it once the predecessor's
// lease has certainly run out.
func (w *Writer) Stray(ctx context.Context, filter string) ([]string, error) {
	p := w.p
	after := w.loadedUpTo.Load()
	mark, err := p.leaderMark(ctx, filter)
	if err != nil || mark <= after {
		return nil, err // nothing written since Load, by anyone
	}
	for tries := 0; ; tries++ {
		var stray []string
		var seen uint64
		err := p.read(ctx, p.cfg.EventsStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{filter},
			DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
			HeadersOnly:    true,
		}, func(m jetstream.Msg) {
			md, err := m.Metadata()
			if err != nil {
				return
			}
			seen = max(seen, md.Sequence.Stream)
			if md.Sequence.Stream > after && termOf(m.Headers().Get(jetstream.MsgIDHeader)) != w.cfg.Term {
				stray = append(stray, m.Subject())
			}
		})
		if err != nil || seen >= mark {
			return stray, err
		}
		// A follower that lags answered: a late write may be beyond it.
		if err := followerWait(ctx, tries, mark, seen); err != nil {
			return nil, fmt.Errorf("publisher: stray writes: %w", err)
		}
	}
}

// errFollowerBehind: a read went through a follower that stayed behind the
// leader's mark. Retry the whole read: the message at the mark may also
// have gone (deleted, aged out) since the mark was taken.
var errFollowerBehind = errors.New("a follower stayed behind the stream leader")

// followerRetry is how long Load and Stray give a lagging follower before
// reading again, and followerTries how often.
const (
	followerRetry = 50 * time.Millisecond
	followerTries = 40
)

// followerWait waits before the next read of a follower that had read up
// to seen of mark, or says it stayed behind too long.
func followerWait(ctx context.Context, tries int, mark, seen uint64) error {
	if tries >= followerTries {
		return fmt.Errorf("read up to %d of %d: %w", seen, mark, errFollowerBehind)
	}
	if err := pause(ctx, followerRetry); err != nil {
		return fmt.Errorf("read up to %d of %d: %w", seen, mark, err)
	}
	return nil
}

// leaderMark is the stream sequence of the last message under filter as
// the events stream's leader has it; 0 when there is none.
func (p *Publisher) leaderMark(ctx context.Context, filter string) (uint64, error) {
	m, err := p.leaderLast(ctx, p.cfg.EventsStream, filter)
	switch {
	case errors.Is(err, errNoMessage):
		return 0, nil
	case err != nil:
		return 0, err
	}
	return m.Sequence, nil
}

// pause waits d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// loadCaughtUp, when set by a test, runs between Load's catch-up read and
// its last read, where a concurrent writer is most harmful.
var loadCaughtUp func()

// read delivers every message of an ordered consumer that is pending when it
// starts, then stops.
func (p *Publisher) read(ctx context.Context, stream string, cc jetstream.OrderedConsumerConfig, fn func(jetstream.Msg)) error {
	cons, err := p.js.OrderedConsumer(ctx, stream, cc)
	if err != nil {
		return fmt.Errorf("publisher: load %s: %w", stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return fmt.Errorf("publisher: load %s: %w", stream, err)
	}
	defer it.Stop()
	// The consumer exists once Messages returns; its creation info says
	// how much there is to read (nothing: done).
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil
	}
	// Messages has no ctx of its own; stop it when ctx ends.
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("publisher: load %s: %w", stream, ctx.Err())
			}
			return fmt.Errorf("publisher: load %s: %w", stream, err)
		}
		fn(m)
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("publisher: load %s: %w", stream, err)
		}
		if md.NumPending == 0 {
			return nil
		}
	}
}
