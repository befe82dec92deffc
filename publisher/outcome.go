package publisher

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/schemas"
)

// handle applies one answer: a publish stored (or found stored), refused,
// unclear, or the outcome of resolving a refusal.
func (l *loop) handle(ctx context.Context, r result) {
	p := l.p
	it := r.it
	if it == nil {
		if it = l.flying[r.msg]; it == nil {
			return // not ours (cannot happen: one answer per publish)
		}
		delete(l.flying, r.msg)
	}
	ended := it.w.ended
	switch {
	case r.res == resStored:
		p.duplicates.Add(1)
		l.observe(OutcomeDuplicate, it)
		l.succeed(it, r.seq)
	case ended && r.err != nil, ended && r.res != resNone:
		// The term is over: no retry, no second look.
		p.inflight.Add(-1)
		p.fenced.Add(1)
		l.next(it)
	case r.res == resEmpty:
		// The subject aged out of the events stream since we last wrote
		// it: nothing to fork, so expect an empty subject from now on.
		delete(it.w.last, it.rec.Subject)
		it.expected = 0
		l.retry(ctx, it, errors.New("subject aged out"))
	case r.res == resConflict:
		l.conflict(it, r.latest)
	case r.res == resError:
		l.retry(ctx, it, r.err)
	case r.err == nil:
		if r.ack.Duplicate {
			p.duplicates.Add(1)
			l.observe(OutcomeDuplicate, it)
		} else {
			l.observe(OutcomeOK, it)
		}
		l.succeed(it, r.ack.Sequence)
	case isWrongLastSeq(r.err):
		// Either an earlier attempt of ours was stored (the server checks
		// the expected sequence before the duplicate window on a single
		// server) or another writer got there first: look.
		go l.resolve(ctx, it)
	case isPermanent(r.err):
		p.failed.Add(1)
		l.observe(OutcomeError, it)
		p.log.Error("record dropped, publish refused", "subject", it.rec.Subject, "id", it.rec.ID, "err", r.err)
		p.inflight.Add(-1)
		l.next(it)
	default:
		l.retry(ctx, it, r.err)
	}
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

// errCodeHeaderTooLarge is the server's "header size exceeds maximum".
const errCodeHeaderTooLarge jetstream.ErrorCode = 10097

// isPermanent tells the errors that no retry can fix. Everything else
// (timeouts, disconnects, no responders, a stream leader away) is ambiguous
// or transient and retried with the same ID and expected sequence.
func isPermanent(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) || errors.Is(err, nats.ErrBadHeaderMsg) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeBadRequest,
			jetstream.JSErrCodeStreamMessageExceedsMaximum,
			errCodeHeaderTooLarge:
			return true
		}
	}
	return false
}

func (l *loop) observe(outcome string, it *item) {
	if o := l.p.cfg.Observer; o != nil {
		o.ObservePublish(outcome, time.Since(it.sent))
	}
}

// retry sends the record again after a backoff, with the same ID and
// expected sequence.
func (l *loop) retry(ctx context.Context, it *item, cause error) {
	p := l.p
	p.retries.Add(1)
	l.observe(OutcomeRetry, it)
	if it.bo == nil {
		it.bo = backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(50*time.Millisecond),
			backoff.WithMaxInterval(2*time.Second),
			backoff.WithMaxElapsedTime(0), // until it succeeds, or its term or Run ends
		)
	}
	d := it.bo.NextBackOff()
	p.log.Debug("publish retry", "subject", it.rec.Subject, "id", it.rec.ID, "in", d, "err", cause)
	it.w.backingOff[it] = true
	it.retry = time.AfterFunc(d, func() {
		select {
		case l.retryCh <- it:
		case <-ctx.Done():
		}
	})
}

// resolve runs off the loop: it reads the subject's last message, through
// the stream leader, to tell our own earlier attempt from another writer.
func (l *loop) resolve(ctx context.Context, it *item) {
	r := result{it: it}
	defer func() { l.results <- r }()
	p := l.p
	rctx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
	defer cancel()
	msg, err := p.leaderLast(rctx, p.cfg.EventsStream, it.rec.Subject)
	switch {
	case isNoMessage(err):
		r.res = resEmpty
	case err != nil:
		r.res, r.err = resError, err
	case msg.Header.Get(jetstream.MsgIDHeader) == it.rec.ID:
		r.res, r.seq = resStored, msg.Sequence
	case msg.Sequence == it.expected:
		// The stream agrees with us now; the refusal was stale. Try again.
		r.res, r.err = resError, errors.New("publisher: wrong last sequence not reproduced")
	default:
		r.res, r.latest = resConflict, latestFrom(msg.Subject, msg.Sequence, msg.Data)
	}
}

// conflict drops the record and every queued record of its subject: another
// writer owns the subject's history now. The subject stays blocked for the
// writer until it is primed again (after the caller re-read it).
func (l *loop) conflict(it *item, latest *schemas.Stored) {
	p := l.p
	subj := it.rec.Subject
	p.conflicts.Add(1)
	l.observe(OutcomeConflict, it)
	dropped := 1
	if q := l.active[subj]; q != nil {
		for _, w := range q.waiting {
			p.conflicts.Add(1)
			l.complete(w)
			dropped++
		}
	}
	delete(l.active, subj)
	p.inflight.Add(-1)
	l.complete(it)
	it.w.blocked[subj] = true
	var seq uint64
	if latest != nil {
		seq = latest.StreamSeq
	}
	p.log.Warn("subject owned by another writer, records dropped",
		"subject", subj, "dropped", dropped, "stream_seq", seq)
	if it.w.cfg.OnConflict != nil {
		it.w.cfg.OnConflict(subj)
	}
}

func (l *loop) succeed(it *item, seq uint64) {
	p := l.p
	p.published.Add(1)
	it.w.last[it.rec.Subject] = seq
	for {
		cur := it.w.maxAck.Load()
		if seq <= cur || it.w.maxAck.CompareAndSwap(cur, seq) {
			break
		}
	}
	p.inflight.Add(-1)
	l.next(it)
}

// next finishes it and starts the next record of its subject, if any.
func (l *loop) next(it *item) {
	subj := it.rec.Subject
	l.complete(it)
	q := l.active[subj]
	if q == nil || len(q.waiting) == 0 {
		delete(l.active, subj)
		return
	}
	nx := q.waiting[0]
	q.waiting[0] = nil
	q.waiting = q.waiting[1:]
	l.ready = append(l.ready, nx)
}

// complete records that it is finished; settle books that once per loop
// turn.
func (l *loop) complete(it *item) {
	l.done = append(l.done, it)
	if w := it.w; w != nil {
		w.queued--
		if w.ended {
			w.checkFenced()
		}
	}
}

// settle books the records finished this turn: memory, Flush waiters.
func (l *loop) settle() {
	if len(l.done) == 0 {
		return
	}
	p := l.p
	p.mu.Lock()
	p.mem -= len(l.done)
	for _, it := range l.done {
		p.book.finish(it.n)
		if it.w != nil {
			it.w.book.finish(it.n)
		}
	}
	p.mu.Unlock()
	clear(l.done)
	l.done = l.done[:0]
}
