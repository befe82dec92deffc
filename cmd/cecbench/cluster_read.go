package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/audit"
)

// storedLog keeps what a reader of the events stream received, for the
// history rules, the final state and the pauses between stored events.
type storedLog struct {
	mu     sync.Mutex
	msgs   []audit.Msg
	stored []time.Time
}

func (l *storedLog) add(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	l.mu.Lock()
	l.msgs = append(l.msgs, audit.Msg{StreamSeq: md.Sequence.Stream, Subject: m.Subject(), Data: m.Data()})
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

func (l *storedLog) snapshot() ([]audit.Msg, []time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]audit.Msg(nil), l.msgs...), append([]time.Time(nil), l.stored...)
}

// lastPerSubject reads the last message of every subject under filter.
func lastPerSubject(ctx context.Context, js jetstream.JetStream, stream, filter string) ([]audit.Msg, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(rctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("last per subject: %w", err)
	}
	var out []audit.Msg
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
			out = append(out, audit.Msg{StreamSeq: md.Sequence.Stream, Subject: m.Subject(), Data: m.Data()})
			if md.NumPending == 0 {
				return out, nil
			}
		}
		if n == 0 {
			return nil, errors.New("last per subject: read stalled")
		}
	}
}
