package lease

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// hold runs lead for one term while renewing the key. It returns once lead
// has returned, with the last revision written and whether the key was
// still ours at the end.
func (e *Elector) hold(ctx context.Context, key string, rev uint64, sent time.Time, log *slog.Logger, lead func(*Term)) (uint64, bool) {
	termCtx, end := context.WithCancel(ctx)
	term := newTerm(termCtx, key)
	term.extend(sent.Add(e.TTL() - e.margin()))
	log = log.With("term", term.ID())
	log.Info("lease term started; polling")
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(term)
	}()
	// stop ends the term and waits for lead. A lost key revokes the
	// validity first, so that nothing more is published; a clean stop
	// lets lead publish what it holds while the validity lasts.
	stop := func(lost bool) {
		if lost {
			term.revoke()
		}
		end()
		<-done
		term.revoke()
		log.Info("lease term ended")
	}

	renewEvery := e.TTL() / 3
	retryEvery := max(e.TTL()/15, 100*time.Millisecond)
	timer := time.NewTimer(renewEvery)
	defer timer.Stop()
	failing := ""
	for {
		select {
		case <-done:
			end()
			term.revoke()
			log.Info("lease term ended")
			return rev, true
		case <-ctx.Done():
			stop(false)
			return rev, true
		case <-timer.C:
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, renewEvery)
		next, err := e.kv.Update(rctx, key, []byte(e.cfg.Holder), rev)
		cancel()
		switch {
		case err == nil:
			rev = next
			term.extend(sent.Add(e.TTL() - e.margin()))
			if failing != "" {
				log.Info("lease renewed again; publishing resumes")
				failing = ""
			}
			timer.Reset(renewEvery)
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			// The key is no longer the one we wrote: taken, released by
			// someone, or expired while NATS was away.
			next, sent, outcome := e.reclaim(ctx, key, term, log)
			switch outcome {
			case reclaimed:
				rev = next
				term.extend(sent.Add(e.TTL() - e.margin()))
				failing = ""
				timer.Reset(renewEvery)
			case retryLater:
				timer.Reset(retryEvery)
			default:
				log.Warn("lease lost; stepping down")
				stop(true)
				return rev, false
			}
		default:
			// NATS unreachable or slow: the term goes on (polling and
			// buffering), its validity lapses until a renewal succeeds.
			if ctx.Err() != nil {
				continue
			}
			if msg := err.Error(); msg != failing {
				failing = msg
				log.Warn("lease renewal failing; polling goes on, publishing waits for a renewal", "err", err)
			}
			timer.Reset(retryEvery)
		}
	}
}

type reclaimOutcome int

const (
	lost reclaimOutcome = iota
	reclaimed
	retryLater
)

// reclaim takes the key anew if nobody holds it (it expired while NATS was
// away) and the holder confirms that nobody acted in its place meanwhile.
func (e *Elector) reclaim(ctx context.Context, key string, term *Term, log *slog.Logger) (uint64, time.Time, reclaimOutcome) {
	rctx, cancel := context.WithTimeout(ctx, e.TTL()/3)
	defer cancel()
	entry, err := e.kv.Get(rctx, key)
	switch {
	case err == nil:
		if string(entry.Value()) == e.cfg.Holder {
			log.Error("lease taken under this instance's own name by another process: give every instance its own name (instance)")
		}
		return 0, time.Time{}, lost
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
	default:
		return 0, time.Time{}, retryLater
	}
	check := term.reacquireCheck()
	if check == nil {
		return 0, time.Time{}, lost
	}
	sent := time.Now()
	rev, err := e.kv.Create(rctx, key, []byte(e.cfg.Holder))
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return 0, time.Time{}, lost
	case err != nil:
		return 0, time.Time{}, retryLater
	}
	if err := check(rctx); err != nil {
		log.Warn("lease expired during an outage and someone acted meanwhile; stepping down", "err", err)
		e.release(key, rev)
		return 0, time.Time{}, lost
	}
	log.Info("lease expired during an outage; reclaimed, nobody acted meanwhile")
	return rev, sent, reclaimed
}

// release deletes the key so that a standby takes over at once instead of
// after the TTL, but only if our revision is still the last: a key another
// holder has taken since is not ours to delete.
func (e *Elector) release(key string, rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.kv.Delete(ctx, key, jetstream.LastRevision(rev))
}
