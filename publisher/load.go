package publisher

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// sourceHeader names, on a sourced message, the origin stream and sequence:
// "<stream> <seq> ...".
const sourceHeader = "Nats-Stream-Source"

func latestFrom(subject string, seq uint64, body []byte) *Latest {
	l := &Latest{Subject: subject, StreamSeq: seq, Body: body}
	// A body that is not an event leaves Event zero; Body still says what
	// the stream holds.
	_ = json.Unmarshal(body, &l.Event)
	return l
}

// originSeq reads the events-stream sequence from a sourced message.
func originSeq(h string) uint64 {
	f := strings.Fields(h)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseUint(f[1], 10, 64)
	return n
}

// Load returns the current state of every subject under filter (for
// example "cec.evt.acme.>") and primes the expected last-subject sequences
// of those subjects. Call it before emitting records for them.
//
// It reads the last message per subject of the state stream, then the
// events stream past the highest origin sequence seen there (sourcing is
// asynchronous and may lag), then the last sequence per subject of the
// events stream (headers only). A subject whose events have aged out keeps
// its state with StreamSeq 0.
func (p *Publisher) Load(ctx context.Context, filter string) (map[string]Latest, error) {
	out := make(map[string]Latest)
	var maxOrigin uint64
	err := p.read(ctx, p.cfg.StateStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	}, func(m jetstream.Msg) {
		seq := originSeq(m.Headers().Get(sourceHeader))
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
	err = p.read(ctx, p.cfg.EventsStream, cc, func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		out[m.Subject()] = *latestFrom(m.Subject(), md.Sequence.Stream, m.Data())
	})
	if err != nil {
		return nil, err
	}

	// What the events stream holds now is what publishes are checked
	// against; anything else has aged out.
	prime := make(map[string]uint64, len(out))
	err = p.read(ctx, p.cfg.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		HeadersOnly:    true,
	}, func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		prime[m.Subject()] = md.Sequence.Stream
	})
	if err != nil {
		return nil, err
	}
	for subj, l := range out {
		seq := prime[subj]
		if seq == 0 || seq < l.StreamSeq {
			l.StreamSeq = seq
			out[subj] = l
		}
	}
	for subj := range out {
		if _, ok := prime[subj]; !ok {
			prime[subj] = 0 // aged out: a publish must expect an empty subject
		}
	}
	p.mu.Lock()
	if p.prime == nil {
		p.prime = prime
	} else {
		for k, v := range prime {
			p.prime[k] = v
		}
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return out, nil
}

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
