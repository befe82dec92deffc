package publisher

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/schemas"
)

// subjQueue holds the records of a subject that wait behind the one being
// published; the subject is in loop.active while one is.
type subjQueue struct{ waiting []*item }

// result is the answer to one publish attempt, or the outcome of resolving
// an unclear one.
type result struct {
	msg    *nats.Msg // the attempt, when it came from the client's handlers
	it     *item     // the record, when it came from a resolver
	ack    *jetstream.PubAck
	err    error
	res    resolution
	seq    uint64
	latest *schemas.Stored
}

type resolution int

const (
	resNone     resolution = iota
	resStored              // the last message on the subject is ours
	resEmpty               // the subject has aged out of the events stream
	resConflict            // another writer's message is the last one
	resError               // could not tell; try again
)

// loop is the state Run owns.
type loop struct {
	p       *Publisher
	pjs     jetstream.JetStream
	active  map[string]*subjQueue
	ready   []*item
	flying  map[*nats.Msg]*item // sent, awaiting the client's ack or error
	results chan result
	retryCh chan *item
	done    []*item // finished this turn, booked by settle
}

// Run publishes accepted records until ctx ends, then returns nil. Records
// not yet stored when it returns stay unpublished (flush and end the
// writers first). A publisher runs once: a second call returns ErrRunning.
//
// Acknowledgements are matched to their publish as they arrive, so one slow
// or lost ack holds back nothing but its own record (and the records of its
// subject behind it).
func (p *Publisher) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.ran {
		p.mu.Unlock()
		return ErrRunning
	}
	p.ran, p.running = true, true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.running = false
		p.mu.Unlock()
	}()

	l := &loop{
		p:       p,
		active:  make(map[string]*subjQueue),
		flying:  make(map[*nats.Msg]*item),
		results: make(chan result, 2*p.cfg.MaxInFlight+64),
		retryCh: make(chan *item, p.cfg.MaxInFlight),
	}
	pjs, err := jetstream.New(p.js.Conn(),
		jetstream.WithPublishAsyncMaxPending(p.cfg.MaxInFlight+64),
		jetstream.WithPublishAsyncTimeout(p.cfg.AckTimeout),
		// Each publish gets exactly one of these calls (ack, error, ack
		// timeout or disconnect); results has room for all of them.
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
			l.results <- result{msg: m, ack: ack}
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			l.results <- result{msg: m, err: err}
		}))
	if err != nil {
		return fmt.Errorf("publisher: jetstream: %w", err)
	}
	defer pjs.CleanupPublisher()
	l.pjs = pjs
	// Held records go out as soon as the connection is back.
	reconnected := p.js.Conn().StatusChanged(nats.CONNECTED)
	defer p.js.Conn().RemoveStatusListener(reconnected)

	for {
		// settle first: completions free memory that intake refills from
		// the spool; drops during intake free more, so go round again.
		l.settle()
		l.intake()
		l.dispatch(ctx)
		if len(l.done) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			if s := p.Stats(); s.Buffered+s.InFlight+s.Spooled+s.Held > 0 {
				p.log.Warn("publisher stopped with records unpublished",
					"buffered", s.Buffered, "in_flight", s.InFlight, "held", s.Held, "spooled", s.Spooled)
			}
			return nil
		case <-p.wake:
		case <-reconnected:
		case r := <-l.results:
			l.handle(ctx, r)
			// Take whatever else has arrived before dispatching again, so
			// one loop turn handles a batch of acks.
			for range len(l.results) {
				l.handle(ctx, <-l.results)
			}
		case it := <-l.retryCh:
			it.retry = nil
			delete(it.w.backingOff, it)
			l.resend(ctx, it)
		}
	}
}

// intake moves newly accepted records (memory queue, then spool) into the
// per-subject queues, applies primes and fences ended writers.
func (l *loop) intake() {
	p := l.p
	p.mu.Lock()
	batch := p.q
	p.q = nil
	for p.sp != nil && p.sp.count > 0 && p.mem < p.cfg.BufferEvents {
		rec, lost, ok := p.sp.next()
		for range lost {
			// Unreadable (the spool logged why): nothing will publish it.
			p.failed.Add(1)
			l.finishUnowned(&item{n: p.spHeadN})
			p.spHeadN++
			p.mem++
		}
		if !ok {
			break
		}
		it := &item{rec: rec, n: p.spHeadN}
		p.spHeadN++
		p.mem++
		if w := p.writers[termOf(rec.ID)]; w != nil {
			it.w = w
			batch = append(batch, it)
			continue
		}
		// The record's term has ended: it must never be published.
		p.fenced.Add(1)
		l.finishUnowned(it)
	}
	var primes []writerPrimes
	for _, w := range p.writers {
		if pr := w.pendingPrimesLocked(); pr != nil {
			primes = append(primes, writerPrimes{w, pr})
		}
	}
	ending := p.ending
	p.ending = nil
	if p.sp != nil && p.sp.count == 0 {
		clear(p.gone) // no record of an ended term is left anywhere
	}
	p.mu.Unlock()

	for _, wp := range primes {
		w := wp.w
		for subj, seq := range wp.primes {
			if seq == 0 {
				delete(w.last, subj)
			} else {
				w.last[subj] = seq
			}
			delete(w.blocked, subj)
		}
	}
	for _, w := range ending {
		l.fence(w)
	}
	for _, it := range batch {
		it.w.queued++
		subj := it.rec.Subject
		switch {
		case it.w.ended:
			p.fenced.Add(1)
			l.complete(it)
			continue
		case it.w.blocked[subj]:
			p.conflicts.Add(1)
			l.complete(it)
			continue
		}
		if q, busy := l.active[subj]; busy {
			q.waiting = append(q.waiting, it)
			continue
		}
		l.active[subj] = &subjQueue{}
		l.ready = append(l.ready, it)
	}
}

type writerPrimes struct {
	w      *Writer
	primes map[string]uint64
}

// finishUnowned books a record that belongs to no live writer as finished.
func (l *loop) finishUnowned(it *item) { l.done = append(l.done, it) }

// fence drops every record of an ended writer that has not been sent; those
// in flight finish with their answers, without retries.
func (l *loop) fence(w *Writer) {
	p := l.p
	drop := func(it *item) {
		p.fenced.Add(1)
		l.complete(it)
	}
	// Records queued behind another of their subject first: dropping the
	// one ahead also forgets the subject's queue.
	for _, q := range l.active {
		kept := q.waiting[:0]
		for _, it := range q.waiting {
			if it.w == w {
				drop(it)
				continue
			}
			kept = append(kept, it)
		}
		clear(q.waiting[len(kept):])
		q.waiting = kept
	}
	for _, it := range w.held {
		delete(l.active, it.rec.Subject)
		p.held.Add(-1)
		drop(it)
	}
	w.held = nil
	kept := l.ready[:0]
	for _, it := range l.ready {
		if it.w == w {
			delete(l.active, it.rec.Subject)
			drop(it)
			continue
		}
		kept = append(kept, it)
	}
	clear(l.ready[len(kept):])
	l.ready = kept
	// Records waiting out a backoff are not retried: drop those whose
	// timer has not fired (a fired one arrives on retryCh and is dropped
	// there). Records in flight finish with their answer.
	for it := range w.backingOff {
		if it.retry.Stop() {
			delete(w.backingOff, it)
			p.inflight.Add(-1)
			p.fenced.Add(1)
			l.next(it)
		}
	}
	w.checkFenced()
}

// dispatch sends ready records while the window has room; records whose
// writer may not write now (its lease is unconfirmed, or NATS is away)
// are held until it may.
func (l *loop) dispatch(ctx context.Context) {
	p := l.p
	connected := p.js.Conn().IsConnected()
	// Held records whose writer may write again go first: they are older.
	if connected && p.held.Load() > 0 {
		for _, w := range p.liveWriters() {
			if len(w.held) > 0 && w.mayWrite() {
				p.held.Add(-int64(len(w.held)))
				l.ready = append(w.held, l.ready...)
				w.held = nil
			}
		}
	}
	sent := 0
	for sent < len(l.ready) && int(p.inflight.Load()) < p.cfg.MaxInFlight {
		it := l.ready[sent]
		l.ready[sent] = nil
		sent++
		if !connected || !it.w.mayWrite() {
			it.w.held = append(it.w.held, it)
			p.held.Add(1)
			continue
		}
		it.expected = it.w.last[it.rec.Subject]
		p.inflight.Add(1)
		l.send(ctx, it)
	}
	if sent > 0 {
		n := copy(l.ready, l.ready[sent:])
		clear(l.ready[n:])
		l.ready = l.ready[:n]
	}
}

// liveWriters lists the writers not ended.
func (p *Publisher) liveWriters() []*Writer {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Writer, 0, len(p.writers))
	for _, w := range p.writers {
		out = append(out, w)
	}
	return out
}

// resend sends a record again after a backoff, unless its writer ended or
// may not write now.
func (l *loop) resend(ctx context.Context, it *item) {
	p := l.p
	switch {
	case it.w.ended:
		p.inflight.Add(-1)
		p.fenced.Add(1)
		l.next(it)
	case !p.js.Conn().IsConnected() || !it.w.mayWrite():
		p.inflight.Add(-1)
		it.w.held = append(it.w.held, it)
		p.held.Add(1)
	default:
		l.send(ctx, it)
	}
}

func (l *loop) send(ctx context.Context, it *item) {
	msg := &nats.Msg{
		Subject: it.rec.Subject,
		Data:    it.rec.Body,
		Header: nats.Header{
			jetstream.MsgIDHeader:               []string{it.rec.ID},
			jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(it.expected, 10)},
			"Content-Type":                      []string{schemas.EnvelopeContentType},
		},
	}
	it.sent = time.Now()
	l.flying[msg] = it
	if _, err := l.pjs.PublishMsgAsync(msg); err != nil {
		// Not sent at all: no handler will answer for it.
		delete(l.flying, msg)
		l.handle(ctx, result{it: it, err: err})
	}
}
