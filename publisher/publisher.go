package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors returned by the Publisher.
var (
	// ErrBufferFull refuses a record when memory and spool are both full.
	// Nothing was stored; the caller keeps its old baseline and detects the
	// change again later.
	ErrBufferFull = errors.New("publisher: buffer full")
	// ErrInvalidRecord refuses a record without subject or ID.
	ErrInvalidRecord = errors.New("publisher: invalid record")
	// ErrRunning is returned by a second concurrent Run.
	ErrRunning = errors.New("publisher: already running")
)

// Latest is the last event stored on a subject.
type Latest struct {
	Subject string
	// StreamSeq is the events-stream sequence of the event, 0 if it has
	// aged out of the events stream (the state stream still holds it).
	StreamSeq uint64
	Event     schemas.Event
	Body      []byte
}

// Stats are the publisher's counters.
type Stats struct {
	Buffered   int    // accepted records held in memory, not in flight
	Spooled    int    // accepted records waiting in the spool on disk
	InFlight   int    // records sent (or waiting to be re-sent), not yet acknowledged
	Published  uint64 // records stored (duplicates included)
	Duplicates uint64 // records JetStream already held (an earlier attempt was stored)
	Conflicts  uint64 // records dropped because another writer owns their subject
	Refused    uint64 // Emit calls answered with ErrBufferFull
	Retries    uint64 // publish attempts retried after an ambiguous outcome
	Failed     uint64 // records dropped after a permanent error (logged)
}

type item struct {
	rec      schemas.Record
	n        uint64 // acceptance number, for Flush and conflict fences
	expected uint64
	sent     time.Time
	bo       *backoff.ExponentialBackOff
}

// subjQueue holds the records of a subject that wait behind the one in
// flight; the subject is in Publisher.active while anything is in flight.
type subjQueue struct{ waiting []*item }

type resolution int

const (
	resNone     resolution = iota
	resStored              // the last message on the subject is ours
	resEmpty               // the subject has aged out of the events stream
	resConflict            // another writer's message is the last one
	resError               // could not tell; try again
)

type result struct {
	it     *item
	ack    *jetstream.PubAck
	err    error
	res    resolution
	seq    uint64
	latest *Latest
}

type flight struct {
	it  *item
	fut jetstream.PubAckFuture
}

type flushWaiter struct {
	target    uint64
	remaining uint64
	ch        chan struct{}
}

// Publisher publishes records to the events stream; see the package
// documentation. Emit, Flush, Stats and Load are safe for concurrent use.
type Publisher struct {
	js  jetstream.JetStream
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	q       []*item // accepted, in memory, not yet taken by Run
	mem     int     // records in memory: q plus those Run holds
	sp      *spool  // nil without SpoolDir
	spHeadN uint64  // acceptance number of the spool's oldest record
	nextN   uint64  // last acceptance number given out
	done    uint64  // records finished (stored or dropped)
	waiters []*flushWaiter
	prime   map[string]uint64
	wake    chan struct{}
	running bool

	inflight                                                   atomic.Int64
	published, duplicates, conflicts, refused, retries, failed atomic.Uint64

	// Owned by Run.
	last    map[string]uint64 // events-stream seq of the last message per subject
	active  map[string]*subjQueue
	fences  map[string]uint64 // drop records of the subject accepted up to n
	ready   []*item
	evs     jetstream.Stream
	results chan result
	retryCh chan *item
	doneNs  []uint64
}

// New returns a Publisher for the streams of cfg. It does not provision
// them (see [Provision]). With SpoolDir set it opens the spool; records an
// earlier run left there are discarded (and logged): that run's records
// still in memory died with it, so replaying the spool would publish a
// history with holes, and the poller re-detects the current state from the
// stream anyway.
func New(js jetstream.JetStream, cfg Config) (*Publisher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		js:     js,
		cfg:    cfg,
		log:    cfg.Logger.With("component", "publisher"),
		wake:   make(chan struct{}, 1),
		last:   make(map[string]uint64),
		active: make(map[string]*subjQueue),
		fences: make(map[string]uint64),
	}
	if cfg.SpoolDir != "" {
		sp, err := openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes)
		if err != nil {
			return nil, err
		}
		p.sp = sp
		if n := sp.drop(); n > 0 {
			p.log.Warn("spool held records of an earlier run; discarded, current state will be re-detected", "records", n)
		}
	}
	return p, nil
}

// Emit accepts rec for publishing without blocking. nil means the record
// will be published, after every earlier record of its subject. When memory
// and spool are full it returns ErrBufferFull and keeps nothing.
func (p *Publisher) Emit(ctx context.Context, rec schemas.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publisher: emit: %w", err)
	}
	if rec.Subject == "" || rec.ID == "" {
		return fmt.Errorf("%w: subject %q id %q", ErrInvalidRecord, rec.Subject, rec.ID)
	}
	p.mu.Lock()
	switch {
	case (p.sp == nil || p.sp.count == 0) && p.mem < p.cfg.BufferEvents:
		p.nextN++
		p.q = append(p.q, &item{rec: rec, n: p.nextN})
		p.mem++
	case p.sp != nil:
		if err := p.sp.append(rec); err != nil {
			p.mu.Unlock()
			return p.refuse(rec, err)
		}
		p.nextN++
		if p.sp.count == 1 {
			p.spHeadN = p.nextN
		}
	default:
		p.mu.Unlock()
		return p.refuse(rec, nil)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

func (p *Publisher) refuse(rec schemas.Record, cause error) error {
	n := p.refused.Add(1)
	// Refusals come in floods during an outage; log the first and then
	// every thousandth, the counter has the rest.
	if n == 1 || n%1000 == 0 {
		p.log.Warn("record refused, buffer full", "subject", rec.Subject, "refused_total", n, "err", cause)
	}
	if cause != nil && !errors.Is(cause, errSpoolFull) {
		return fmt.Errorf("%w: %w", ErrBufferFull, cause)
	}
	return ErrBufferFull
}

// Flush waits until every record accepted before the call is finished
// (stored, or dropped and counted as a conflict or failure), or ctx ends.
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	if p.done >= p.nextN {
		p.mu.Unlock()
		return nil
	}
	w := &flushWaiter{target: p.nextN, remaining: p.nextN - p.done, ch: make(chan struct{})}
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		for i, x := range p.waiters {
			if x == w {
				p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
		return fmt.Errorf("publisher: flush: %w", ctx.Err())
	}
}

// Stats returns a snapshot of the counters.
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	mem := p.mem
	var spooled int
	if p.sp != nil {
		spooled = p.sp.count
	}
	p.mu.Unlock()
	inflight := int(p.inflight.Load())
	return Stats{
		Buffered:   max(mem-inflight, 0),
		Spooled:    spooled,
		InFlight:   inflight,
		Published:  p.published.Load(),
		Duplicates: p.duplicates.Load(),
		Conflicts:  p.conflicts.Load(),
		Refused:    p.refused.Load(),
		Retries:    p.retries.Load(),
		Failed:     p.failed.Load(),
	}
}

// Run publishes accepted records until ctx ends, then returns nil. Records
// not yet stored when it returns stay unpublished (Flush first). Only one
// Run may be active at a time.
//
// Run publishes through its own JetStream context on the same connection,
// with an async window of MaxInFlight and an ack timeout of AckTimeout.
func (p *Publisher) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.running {
		p.mu.Unlock()
		return ErrRunning
	}
	p.running = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.running = false
		p.mu.Unlock()
	}()

	pjs, err := jetstream.New(p.js.Conn(),
		jetstream.WithPublishAsyncMaxPending(p.cfg.MaxInFlight+64),
		jetstream.WithPublishAsyncTimeout(p.cfg.AckTimeout))
	if err != nil {
		return fmt.Errorf("publisher: jetstream: %w", err)
	}
	defer pjs.CleanupPublisher()

	p.results = make(chan result, p.cfg.MaxInFlight)
	p.retryCh = make(chan *item, p.cfg.MaxInFlight)
	flights := make(chan flight, p.cfg.MaxInFlight)
	var wg sync.WaitGroup
	wg.Go(func() { p.collect(ctx, flights) })
	defer wg.Wait()

	for {
		// finish first: completions free memory that intake refills from
		// the spool; drops during intake free more, so go round again.
		p.finish()
		p.intake()
		p.dispatch(pjs, flights)
		if len(p.doneNs) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			if s := p.Stats(); s.Buffered+s.InFlight+s.Spooled > 0 {
				p.log.Warn("publisher stopped with records unpublished",
					"buffered", s.Buffered, "in_flight", s.InFlight, "spooled", s.Spooled)
			}
			return nil
		case <-p.wake:
		case r := <-p.results:
			p.handle(ctx, r)
			// Take whatever else has arrived before dispatching again, so
			// one loop turn handles a batch of acks.
			for range len(p.results) {
				p.handle(ctx, <-p.results)
			}
		case it := <-p.retryCh:
			p.send(pjs, flights, it)
		}
	}
}

// collect waits for the futures in send order; acks come back in about that
// order, and the ack timeout bounds the wait on any one of them.
func (p *Publisher) collect(ctx context.Context, flights <-chan flight) {
	for {
		var f flight
		select {
		case f = <-flights:
		case <-ctx.Done():
			return
		}
		var r result
		select {
		case ack := <-f.fut.Ok():
			r = result{it: f.it, ack: ack}
		case err := <-f.fut.Err():
			r = result{it: f.it, err: err}
		case <-ctx.Done():
			return
		}
		// Never blocks: each in-flight record has at most one result queued
		// and results has room for MaxInFlight.
		p.results <- r
	}
}

// intake moves newly accepted records (memory queue, then spool) into Run's
// per-subject queues.
func (p *Publisher) intake() {
	p.mu.Lock()
	batch := p.q
	p.q = nil
	var spoolErr error
	var spoolDropped int
	for p.sp != nil && p.sp.count > 0 && p.mem < p.cfg.BufferEvents {
		rec, err := p.sp.next()
		if err != nil {
			spoolErr = err
			spoolDropped = p.sp.drop()
			// Nothing will finish these now: count them done for Flush.
			first := p.spHeadN
			for _, w := range p.waiters {
				for n := first; n < first+uint64(spoolDropped); n++ {
					if n <= w.target {
						w.remaining--
					}
				}
			}
			p.done += uint64(spoolDropped)
			p.notifyLocked()
			break
		}
		batch = append(batch, &item{rec: rec, n: p.spHeadN})
		p.spHeadN++
		p.mem++
	}
	prime := p.prime
	p.prime = nil
	p.mu.Unlock()

	if spoolErr != nil {
		p.failed.Add(uint64(spoolDropped))
		p.log.Error("spool unreadable, records lost", "records", spoolDropped, "err", spoolErr)
	}
	for subj, seq := range prime {
		// Never move back: a Load that read the stream before one of our
		// own publishes was stored would otherwise undo it and cause a
		// false conflict on the next record.
		if _, busy := p.active[subj]; !busy && seq > p.last[subj] {
			p.setLast(subj, seq)
		}
	}
	for _, it := range batch {
		subj := it.rec.Subject
		if fence, ok := p.fences[subj]; ok {
			if it.n <= fence {
				p.conflicts.Add(1)
				p.complete(it)
				continue
			}
			delete(p.fences, subj)
		}
		if q, busy := p.active[subj]; busy {
			q.waiting = append(q.waiting, it)
			continue
		}
		p.active[subj] = &subjQueue{}
		p.ready = append(p.ready, it)
	}
}

func (p *Publisher) setLast(subj string, seq uint64) {
	if seq == 0 {
		delete(p.last, subj)
		return
	}
	p.last[subj] = seq
}

// dispatch sends ready records while the window has room.
func (p *Publisher) dispatch(pjs jetstream.JetStream, flights chan<- flight) {
	sent := 0
	for sent < len(p.ready) && int(p.inflight.Load()) < p.cfg.MaxInFlight {
		it := p.ready[sent]
		p.ready[sent] = nil
		sent++
		it.expected = p.last[it.rec.Subject]
		p.inflight.Add(1)
		p.send(pjs, flights, it)
	}
	if sent > 0 {
		n := copy(p.ready, p.ready[sent:])
		clear(p.ready[n:])
		p.ready = p.ready[:n]
	}
}

func (p *Publisher) send(pjs jetstream.JetStream, flights chan<- flight, it *item) {
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
	fut, err := pjs.PublishMsgAsync(msg)
	if err != nil {
		// Not sent at all; results has room for this record's one result.
		p.results <- result{it: it, err: err}
		return
	}
	flights <- flight{it: it, fut: fut}
}

func (p *Publisher) observe(outcome string, it *item) {
	if p.cfg.Observer != nil {
		p.cfg.Observer.ObservePublish(outcome, time.Since(it.sent))
	}
}

func (p *Publisher) handle(ctx context.Context, r result) {
	it := r.it
	switch {
	case r.res == resStored:
		p.duplicates.Add(1)
		p.observe(OutcomeDuplicate, it)
		p.succeed(it, r.seq)
	case r.res == resEmpty:
		// The subject aged out of the events stream since we last wrote
		// it: nothing to fork, so expect an empty subject from now on.
		p.setLast(it.rec.Subject, 0)
		it.expected = 0
		p.retry(ctx, it, errors.New("subject aged out"))
	case r.res == resConflict:
		p.conflict(it, r.latest)
	case r.res == resError:
		p.retry(ctx, it, r.err)
	case r.err == nil:
		if r.ack.Duplicate {
			p.duplicates.Add(1)
			p.observe(OutcomeDuplicate, it)
		} else {
			p.observe(OutcomeOK, it)
		}
		p.succeed(it, r.ack.Sequence)
	case isWrongLastSeq(r.err):
		// Either an earlier attempt of ours was stored (the server checks
		// the expected sequence before the duplicate window on a single
		// server) or another writer got there first: look.
		go p.resolve(ctx, it)
	case isPermanent(r.err):
		p.failed.Add(1)
		p.observe(OutcomeError, it)
		p.log.Error("record dropped, publish refused", "subject", it.rec.Subject, "id", it.rec.ID, "err", r.err)
		p.next(it)
	default:
		p.retry(ctx, it, r.err)
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

// isPermanent tells the errors that no retry can fix. Everything else
// (timeouts, disconnects, no responders, a stream leader away) is ambiguous
// or transient and retried with the same ID and expected sequence.
// errCodeHeaderTooLarge is the server's "header size exceeds maximum".
const errCodeHeaderTooLarge jetstream.ErrorCode = 10097

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

func (p *Publisher) retry(ctx context.Context, it *item, cause error) {
	p.retries.Add(1)
	p.observe(OutcomeRetry, it)
	if it.bo == nil {
		it.bo = backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(50*time.Millisecond),
			backoff.WithMaxInterval(2*time.Second),
			backoff.WithMaxElapsedTime(0), // until it succeeds or Run ends
		)
	}
	d := it.bo.NextBackOff()
	p.log.Debug("publish retry", "subject", it.rec.Subject, "id", it.rec.ID, "in", d, "err", cause)
	time.AfterFunc(d, func() {
		select {
		case p.retryCh <- it:
		case <-ctx.Done():
		}
	})
}

// resolve runs off the loop: it reads the subject's last message to tell
// our own earlier attempt from another writer.
func (p *Publisher) resolve(ctx context.Context, it *item) {
	r := result{it: it}
	defer func() { p.results <- r }()
	rctx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
	defer cancel()
	msg, err := p.lastMsg(rctx, it.rec.Subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
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

func (p *Publisher) lastMsg(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	p.mu.Lock()
	s := p.evs
	p.mu.Unlock()
	if s == nil {
		var err error
		if s, err = p.js.Stream(ctx, p.cfg.EventsStream); err != nil {
			return nil, fmt.Errorf("publisher: stream %s: %w", p.cfg.EventsStream, err)
		}
		p.mu.Lock()
		p.evs = s
		p.mu.Unlock()
	}
	msg, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("publisher: last message on %s: %w", subject, err)
	}
	return msg, nil
}

func (p *Publisher) conflict(it *item, latest *Latest) {
	subj := it.rec.Subject
	p.conflicts.Add(1)
	p.observe(OutcomeConflict, it)
	dropped := 1
	if q := p.active[subj]; q != nil {
		for _, w := range q.waiting {
			p.conflicts.Add(1)
			p.complete(w)
			dropped++
		}
	}
	delete(p.active, subj)
	p.inflight.Add(-1)
	p.complete(it)
	// Records of this subject accepted so far but not yet taken in (memory
	// queue or spool) belong to the forked history too.
	p.mu.Lock()
	p.fences[subj] = p.nextN
	p.mu.Unlock()
	// The expected sequence stays ours: later records of this subject
	// emitted from the same stale view conflict too, until the caller has
	// re-read the subject with Load.
	var seq uint64
	if latest != nil {
		seq = latest.StreamSeq
	}
	p.log.Warn("subject owned by another writer, records dropped",
		"subject", subj, "dropped", dropped, "stream_seq", seq)
	if p.cfg.OnConflict != nil {
		p.cfg.OnConflict(subj, latest)
	}
}

func (p *Publisher) succeed(it *item, seq uint64) {
	p.published.Add(1)
	p.setLast(it.rec.Subject, seq)
	p.next(it)
}

// next finishes it and starts the next record of its subject, if any.
func (p *Publisher) next(it *item) {
	subj := it.rec.Subject
	p.inflight.Add(-1)
	p.complete(it)
	q := p.active[subj]
	if q == nil || len(q.waiting) == 0 {
		delete(p.active, subj)
		return
	}
	nx := q.waiting[0]
	q.waiting[0] = nil
	q.waiting = q.waiting[1:]
	p.ready = append(p.ready, nx)
}

// complete records that it is finished; finish publishes that to Flush
// waiters and the memory bound once per loop turn.
func (p *Publisher) complete(it *item) { p.doneNs = append(p.doneNs, it.n) }

func (p *Publisher) finish() {
	if len(p.doneNs) == 0 {
		return
	}
	p.mu.Lock()
	p.mem -= len(p.doneNs)
	p.done += uint64(len(p.doneNs))
	for _, w := range p.waiters {
		for _, n := range p.doneNs {
			if n <= w.target {
				w.remaining--
			}
		}
	}
	p.notifyLocked()
	p.mu.Unlock()
	p.doneNs = p.doneNs[:0]
}

func (p *Publisher) notifyLocked() {
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if w.remaining == 0 || p.done >= p.nextN {
			close(w.ch)
			continue
		}
		kept = append(kept, w)
	}
	clear(p.waiters[len(kept):])
	p.waiters = kept
}
