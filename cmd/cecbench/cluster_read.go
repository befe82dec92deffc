package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/audit"
	"github.com/cecbridge/cecbridge/internal/finalstate"
)

// storedLog keeps what a reader of the events stream received, for the
// history rules, the final state and the pauses between stored events.
type storedLog struct {
	mu     sync.Mutex
	msgs   []finalstate.Msg
	stored []time.Time
}

func (l *storedLog) add(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	l.mu.Lock()
	l.msgs = append(l.msgs, finalstate.Msg{StreamSeq: md.Sequence.Stream, Subject: m.Subject(), Data: m.Data()})
	l.stored = append(l.stored, md.Timestamp)
	l.mu.Unlock()
}

// waitFor waits until the log holds the stream's last message.
func (l *storedLog) waitFor(ctx context.Context, js jetstream.JetStream, stream string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ictx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := js.Stream(ictx, stream)
		cancel()
		if err == nil {
			want := s.CachedInfo().State.LastSeq
			l.mu.Lock()
			have := uint64(0)
			if n := len(l.msgs); n > 0 {
				have = l.msgs[n-1].StreamSeq
			}
			l.mu.Unlock()
			if have >= want {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the events reader did not catch up with %s within %s", stream, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (l *storedLog) snapshot() ([]finalstate.Msg, []time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]finalstate.Msg(nil), l.msgs...), append([]time.Time(nil), l.stored...)
}

// lastPerSubject reads the last message of every subject under filter.
func lastPerSubject(ctx context.Context, js jetstream.JetStream, stream, filter string) ([]finalstate.Msg, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(rctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("last per subject: %w", err)
	}
	var out []finalstate.Msg
	if info := cons.CachedInfo(); info == nil || info.NumPending == 0 {
		return out, nil
	}
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("last per subject: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("last per subject: %w", err)
			}
			out = append(out, finalstate.Msg{StreamSeq: md.Sequence.Stream, Subject: m.Subject(), Data: m.Data()})
			if md.NumPending == 0 {
				return out, nil
			}
		}
		if n == 0 {
			return nil, errors.New("last per subject: read stalled")
		}
	}
}

// HistoryCheck counts what package audit's history rules (audit.Checker)
// found in a run's events, fed in stream order from the stream's first
// message.
type HistoryCheck struct {
	Events      int `json:"events"`
	Subjects    int `json:"subjects"`
	Duplicates  int `json:"duplicates"`   // an event stored again
	Forks       int `json:"forks"`        // two different events at one seq
	Holes       int `json:"holes"`        // runs of seqs missing
	BrokenLinks int `json:"broken_links"` // a prev_id that does not name the event before
	// Other counts the other defects: undecodable messages, seqs repeated
	// too far back to compare, ids not derived from subject and seq,
	// detected windows that go backwards.
	Other int `json:"other_defects"`
	// Problems describes the first defects found.
	Problems []string `json:"problems,omitempty"`
}

// maxProblems bounds HistoryCheck.Problems.
const maxProblems = 20

// Clean says the history breaks no rule.
func (h HistoryCheck) Clean() bool {
	return h.Duplicates+h.Forks+h.Holes+h.BrokenLinks+h.Other == 0
}

// checkHistory runs audit's history rules over msgs, which are a
// tenant's events in stream order from the stream's first message.
func checkHistory(msgs []finalstate.Msg) HistoryCheck {
	var h HistoryCheck
	c := audit.NewChecker(audit.Start{FromFirst: true})
	for _, m := range msgs {
		for _, f := range c.Check(m.StreamSeq, m.Subject, m.Data) {
			if !f.Defect() {
				continue
			}
			switch f.Kind {
			case audit.KindDuplicate:
				h.Duplicates++
			case audit.KindFork:
				h.Forks++
			case audit.KindHole:
				h.Holes++
			case audit.KindBrokenLink:
				h.BrokenLinks++
			default:
				h.Other++
			}
			if len(h.Problems) < maxProblems {
				h.Problems = append(h.Problems, f.String())
			}
		}
	}
	h.Events, h.Subjects = int(c.Events()), c.Subjects()
	return h
}
