package publisher

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/schemas"
)

// Gate says whether a writer may publish now: a lease term that has been
// confirmed recently enough. Changed is closed when that may have changed
// (the publisher then asks Valid again).
type Gate interface {
	Valid() bool
	Changed() <-chan struct{}
}

// WriterConfig configures one writer.
type WriterConfig struct {
	// Term names the writer's term, unique among all terms of all
	// instances (a lease term's ID). It qualifies every message ID, so a
	// retry within the term is deduplicated while another term's event of
	// the same seq is recognised as someone else's.
	Term string
	// Gate, if set, holds publishing back while it is not valid; records
	// wait (in memory, then in the spool) meanwhile.
	Gate Gate
	// OnConflict is called when another writer's message is the last one
	// on a subject this writer tried to publish. The writer drops the
	// subject's records from then on, until Prime says where the subject
	// stands. It runs on the publishing loop and must not block.
	OnConflict func(subject string)
}

// Writer publishes the records of one term: one poller's term of one
// tenant. When the term ends, [Writer.End] fences it: whatever it has not
// published by then never is, so a later term (of this or another
// instance) can rebuild from the stream knowing nothing more will arrive.
type Writer struct {
	p   *Publisher
	cfg WriterConfig

	// Guarded by p.mu.
	book   flushBook
	ended  bool
	primes map[string]uint64

	fenced     chan struct{} // closed once nothing of the writer can be published
	maxAck     atomic.Uint64 // highest stream sequence acknowledged for the writer
	loadedUpTo atomic.Uint64 // highest stream sequence Load saw
	loaded     atomic.Bool   // Load has completed once

	// Owned by the publishing loop.
	last       map[string]uint64 // expected last sequence per subject
	blocked    map[string]bool   // subjects in conflict, until primed
	queued     int               // records inside the loop (queued, held, in flight)
	held       []*item           // ready, waiting for the gate or the connection
	backingOff map[*item]bool    // in flight, waiting out a backoff before a re-send
}

// NewWriter starts a writer for one term.
func (p *Publisher) NewWriter(cfg WriterConfig) *Writer {
	w := &Writer{
		p:          p,
		cfg:        cfg,
		primes:     make(map[string]uint64),
		fenced:     make(chan struct{}),
		last:       make(map[string]uint64),
		blocked:    make(map[string]bool),
		backingOff: make(map[*item]bool),
	}
	p.mu.Lock()
	p.writers[cfg.Term] = w
	p.mu.Unlock()
	if cfg.Gate != nil {
		// Wake the loop whenever the gate may have opened.
		go func() {
			for {
				select {
				case <-cfg.Gate.Changed():
					p.wakeUp()
				case <-w.fenced:
					return
				}
			}
		}()
	}
	return w
}

// Term is the writer's term.
func (w *Writer) Term() string { return w.cfg.Term }

// mayWrite reports whether the gate is open.
func (w *Writer) mayWrite() bool { return w.cfg.Gate == nil || w.cfg.Gate.Valid() }

// Emit accepts rec for publishing without blocking. nil means the record
// will be published, after every earlier record of its subject, unless the
// term ends first. The record's ID is qualified with the writer's term.
// When memory and spool are full it returns ErrBufferFull and keeps
// nothing; after End it returns ErrTermEnded.
func (w *Writer) Emit(ctx context.Context, rec schemas.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publisher: emit: %w", err)
	}
	if rec.Subject == "" || rec.ID == "" {
		return fmt.Errorf("%w: subject %q id %q", ErrInvalidRecord, rec.Subject, rec.ID)
	}
	if w.cfg.Term != "" {
		rec.ID += "." + w.cfg.Term
	}
	return w.p.accept(w, rec)
}

// Flush waits until every record the writer accepted before the call is
// finished, or ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	return w.book.wait(ctx, &w.p.mu, "publisher: flush term "+w.cfg.Term)
}

// End fences the writer: records not yet sent are dropped (in memory and in
// the spool), none is retried, and End returns once every record already
// sent has had its answer, so that nothing of this term can reach the
// stream afterwards. Call Flush first to publish what can be. Emit refuses
// from now on.
func (w *Writer) End(ctx context.Context) error {
	p := w.p
	p.mu.Lock()
	if !w.ended {
		w.ended = true
		delete(p.writers, w.cfg.Term)
		p.gone[w.cfg.Term] = true
		if p.running {
			p.ending = append(p.ending, w)
		} else {
			// Nothing was sent: what waits in memory goes now.
			p.dropUnsentLocked(w)
		}
	}
	p.mu.Unlock()
	p.wakeUp()
	select {
	case <-w.fenced:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publisher: end term %s: %w", w.cfg.Term, ctx.Err())
	}
}

// dropUnsentLocked removes w's records from the memory queue while no loop
// runs, and closes its fence.
func (p *Publisher) dropUnsentLocked(w *Writer) {
	kept := p.q[:0]
	var dropped uint64
	for _, it := range p.q {
		if it.w == w {
			p.book.finish(it.n)
			w.book.finish(it.n)
			dropped++
			continue
		}
		kept = append(kept, it)
	}
	clear(p.q[len(kept):])
	p.q = kept
	p.mem -= int(dropped)
	p.fenced.Add(dropped)
	close(w.fenced)
}

// Prime says that the last message on subject is at events-stream sequence
// seq (0: the subject is empty), as the caller has just read it, and lifts
// a conflict block on it. Records emitted after Prime are checked against
// seq.
func (w *Writer) Prime(subject string, seq uint64) {
	w.p.mu.Lock()
	w.primes[subject] = seq
	w.p.mu.Unlock()
	w.p.wakeUp()
}

// Latest reads what the stream holds now on subject, through the stream
// leader: the events stream first, then the state stream for a subject
// whose events have aged out (StreamSeq 0). It returns nil when neither
// holds anything.
func (w *Writer) Latest(ctx context.Context, subject string) (*schemas.Stored, error) {
	p := w.p
	m, err := p.leaderLast(ctx, p.cfg.EventsStream, subject)
	if err == nil {
		return latestFrom(m.Subject, m.Sequence, m.Data), nil
	}
	if !isNoMessage(err) {
		return nil, err
	}
	m, err = p.leaderLast(ctx, p.cfg.StateStream, subject)
	if isNoMessage(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return latestFrom(m.Subject, 0, m.Data), nil
}

// Unchallenged checks that nobody but this writer has published under
// filter (for example a tenant's "cec.evt.acme.>") since its last
// acknowledged message: the last message there is the writer's own (its
// term qualifies the ID) or no newer than what it saw acknowledged. It
// returns ErrForeignWrite otherwise.
func (w *Writer) Unchallenged(ctx context.Context, filter string) error {
	m, err := w.p.leaderLast(ctx, w.p.cfg.EventsStream, filter)
	if isNoMessage(err) {
		return nil
	}
	if err != nil {
		return err
	}
	// Before Load has completed the writer holds no state to be stale;
	// after it, what Load read or the writer stored itself is known.
	if !w.loaded.Load() || termOf(m.Header.Get(jetstream.MsgIDHeader)) == w.cfg.Term ||
		m.Sequence <= max(w.maxAck.Load(), w.loadedUpTo.Load()) {
		return nil
	}
	return fmt.Errorf("%w: %s at stream sequence %d", ErrForeignWrite, m.Subject, m.Sequence)
}

// checkFenced closes the fence once the loop holds nothing of the writer.
// Called by the loop.
func (w *Writer) checkFenced() {
	if w.queued > 0 {
		return
	}
	select {
	case <-w.fenced:
	default:
		close(w.fenced)
	}
}

// pendingPrimesLocked takes the primes set since the last call. Callers hold
// p.mu.
func (w *Writer) pendingPrimesLocked() map[string]uint64 {
	if len(w.primes) == 0 {
		return nil
	}
	out := w.primes
	w.primes = make(map[string]uint64)
	return out
}
