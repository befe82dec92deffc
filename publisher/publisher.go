package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/schemas"
)

// Errors returned by the Publisher and its writers.
var (
	// ErrBufferFull refuses a record when memory and spool are both full.
	// Nothing was stored; the caller keeps its old baseline and detects the
	// change again later.
	ErrBufferFull = errors.New("publisher: buffer full")
	// ErrInvalidRecord refuses a record without subject or ID.
	ErrInvalidRecord = errors.New("publisher: invalid record")
	// ErrRunning is returned by a second call of Run: a publisher runs
	// once.
	ErrRunning = errors.New("publisher: Run called twice")
	// ErrTermEnded refuses a record of a writer whose term has ended.
	ErrTermEnded = errors.New("publisher: the writer's term has ended")
	// ErrForeignWrite says that someone other than the writer published on
	// its subjects after the writer's last acknowledged message.
	ErrForeignWrite = errors.New("publisher: another writer published meanwhile")
)

// Stats are the publisher's counters.
type Stats struct {
	Buffered   int    // accepted records held in memory, not in flight
	Spooled    int    // accepted records waiting in the spool on disk
	InFlight   int    // records sent (or waiting to be re-sent), not yet acknowledged
	Held       int    // records waiting for their writer's lease to be confirmed or for NATS
	Published  uint64 // records stored (duplicates included)
	Duplicates uint64 // records JetStream already held (an earlier attempt was stored)
	Conflicts  uint64 // records dropped because another writer owns their subject
	Fenced     uint64 // records of an ended term dropped unpublished
	Refused    uint64 // Emit calls answered with ErrBufferFull
	Retries    uint64 // publish attempts retried after an ambiguous outcome
	Failed     uint64 // records dropped after a permanent error (logged)
}

// item is one accepted record on its way to the stream.
type item struct {
	rec      schemas.Record
	w        *Writer
	n        uint64 // acceptance number, for Flush
	expected uint64
	sent     time.Time
	bo       *backoff.ExponentialBackOff
	retry    *time.Timer // pending re-send after a backoff
}

// Publisher publishes the records of its writers to the events stream; see
// the package documentation. Its methods are safe for concurrent use.
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
	book    flushBook
	wake    chan struct{}
	ran     bool
	running bool
	writers map[string]*Writer // live writers by term
	ending  []*Writer          // ended writers Run has not fenced yet
	gone    map[string]bool    // terms of ended writers whose records may still be spooled

	inflight, held                                                     atomic.Int64
	published, duplicates, conflicts, fenced, refused, retries, failed atomic.Uint64
}

// New returns a Publisher for the streams of cfg. It does not provision
// them (see [Provision]). With SpoolDir set it opens the spool; records an
// earlier run left there are discarded (and logged): that run's terms are
// over, and records of an ended term must never reach the stream.
func New(js jetstream.JetStream, cfg Config) (*Publisher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		js:      js,
		cfg:     cfg,
		log:     cfg.Logger.With("component", "publisher"),
		wake:    make(chan struct{}, 1),
		writers: make(map[string]*Writer),
		gone:    make(map[string]bool),
	}
	if cfg.SpoolDir != "" {
		sp, err := openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes, cfg.Logger.With("component", "spool"))
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

func (p *Publisher) wakeUp() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// accept takes rec for w into memory, or the spool when memory is full (or
// the spool already holds older records, which keeps the order).
func (p *Publisher) accept(w *Writer, rec schemas.Record) error {
	p.mu.Lock()
	if w.ended {
		p.mu.Unlock()
		return fmt.Errorf("%w: term %s", ErrTermEnded, w.cfg.Term)
	}
	switch {
	case (p.sp == nil || p.sp.count == 0) && p.mem < p.cfg.BufferEvents:
		p.nextN++
		p.q = append(p.q, &item{rec: rec, w: w, n: p.nextN})
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
	p.book.accept(p.nextN)
	w.book.accept(p.nextN)
	p.mu.Unlock()
	p.wakeUp()
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
// (stored, or dropped and counted), or ctx ends.
func (p *Publisher) Flush(ctx context.Context) error {
	return p.book.wait(ctx, &p.mu, "publisher: flush")
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
	inflight, held := int(p.inflight.Load()), int(p.held.Load())
	return Stats{
		Buffered:   max(mem-inflight-held, 0),
		Spooled:    spooled,
		InFlight:   inflight,
		Held:       held,
		Published:  p.published.Load(),
		Duplicates: p.duplicates.Load(),
		Conflicts:  p.conflicts.Load(),
		Fenced:     p.fenced.Load(),
		Refused:    p.refused.Load(),
		Retries:    p.retries.Load(),
		Failed:     p.failed.Load(),
	}
}

// termOf takes the term qualifier off a message ID ("<event id>.<term>").
func termOf(id string) string {
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		return id[i+1:]
	}
	return ""
}

// flushBook counts records accepted and finished, so that a Flush can wait
// for exactly those accepted before it. Guarded by the publisher's mutex.
type flushBook struct {
	accepted, done uint64 // counts
	last           uint64 // acceptance number of the last record accepted
	waiters        []*flushWaiter
}

type flushWaiter struct {
	target    uint64 // the acceptance number at the call: wait for records up to it
	remaining uint64 // how many of those are not finished
	ch        chan struct{}
}

func (b *flushBook) accept(n uint64) { b.accepted++; b.last = n }

// finish books one finished record, accepted as number n.
func (b *flushBook) finish(n uint64) {
	b.done++
	if len(b.waiters) == 0 {
		return
	}
	kept := b.waiters[:0]
	for _, w := range b.waiters {
		if n <= w.target {
			w.remaining--
		}
		if w.remaining == 0 {
			close(w.ch)
			continue
		}
		kept = append(kept, w)
	}
	clear(b.waiters[len(kept):])
	b.waiters = kept
}

// pending is how many accepted records have not finished.
func (b *flushBook) pending() uint64 { return b.accepted - b.done }

// wait blocks until every record accepted before the call has finished, or
// ctx ends.
func (b *flushBook) wait(ctx context.Context, mu *sync.Mutex, what string) error {
	mu.Lock()
	if b.pending() == 0 {
		mu.Unlock()
		return nil
	}
	w := &flushWaiter{target: b.last, remaining: b.pending(), ch: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		mu.Lock()
		for i, x := range b.waiters {
			if x == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
		mu.Unlock()
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}
