package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/schemas"
)

// DefaultStream is the stream the bridge keeps every event in.
const DefaultStream = schemas.EventsStream

// Range selects the messages a walk reads: those on Filter from StartSeq
// (or, when it is 0, from the first stored at or after StartTime; when both
// are zero, from the stream's first message) up to the stream's last
// message when the walk began, or the last stored at or before Until.
type Range struct {
	Stream    string    // default CEC_EVENTS
	Filter    string    // default every event, cec.evt.>
	StartSeq  uint64    // first stream sequence
	StartTime time.Time // first stored time, when StartSeq is 0
	Until     time.Time // last stored time; zero: no limit
}

// ErrBadRange is returned for a Range that selects nothing sensible.
var ErrBadRange = errors.New("audit: bad range")

func (r Range) withDefaults() (Range, error) {
	if r.Stream == "" {
		r.Stream = DefaultStream
	}
	if r.Filter == "" {
		r.Filter = schemas.AllEvents
	}
	if r.StartSeq > 0 && !r.StartTime.IsZero() {
		return r, fmt.Errorf("%w: a start sequence and a start time exclude each other", ErrBadRange)
	}
	if !r.Until.IsZero() && !r.StartTime.IsZero() && r.Until.Before(r.StartTime) {
		return r, fmt.Errorf("%w: until %s is before since %s", ErrBadRange, fmtTime(r.Until), fmtTime(r.StartTime))
	}
	return r, nil
}

// Progress is told, now and then, how many of the messages a walk expects
// it has read.
type Progress func(done, total uint64)

// progressEvery is how many messages pass between two Progress calls.
const progressEvery = 1000

// walk reads the messages r selects, in stream order, and hands each to fn
// with its metadata; before the first, it tells onStart the stream's state
// as the walk begins.
func walk(ctx context.Context, js jetstream.JetStream, r Range, progress Progress,
	onStart func(jetstream.StreamState), fn func(jetstream.Msg, *jetstream.MsgMetadata) error) error {
	stream, err := js.Stream(ctx, r.Stream)
	if err != nil {
		return fmt.Errorf("audit: stream %s: %w", r.Stream, err)
	}
	state := stream.CachedInfo().State
	onStart(state)
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{r.Filter}}
	switch {
	case r.StartSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, r.StartSeq
	case !r.StartTime.IsZero():
		start := r.StartTime
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	if state.Msgs == 0 || r.StartSeq > state.LastSeq {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", r.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", r.Stream, err)
	}
	defer it.Stop()
	var total uint64
	if info := cons.CachedInfo(); info != nil {
		total = info.NumPending
	}
	if total == 0 {
		return nil
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	var done uint64
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("audit: read %s: %w", r.Stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("audit: read %s: %w", r.Stream, err)
		}
		if md.Sequence.Stream > state.LastSeq || !r.Until.IsZero() && md.Timestamp.After(r.Until) {
			break // stored after the walk began, or past the range
		}
		if err := fn(m, md); err != nil {
			return err
		}
		done++
		if progress != nil && done%progressEvery == 0 {
			progress(done, total)
		}
		if md.NumPending == 0 || md.Sequence.Stream == state.LastSeq {
			break
		}
	}
	if progress != nil {
		progress(done, max(done, total))
	}
	return nil
}

// startOf says how a walk of r begins relative to a stream in state.
func startOf(r Range, state jetstream.StreamState) Start {
	fromFirst := r.StartSeq == 0 && r.StartTime.IsZero() ||
		r.StartSeq > 0 && r.StartSeq <= state.FirstSeq ||
		!r.StartTime.IsZero() && !r.StartTime.After(state.FirstTime)
	return Start{FromFirst: fromFirst, Trimmed: state.FirstSeq > 1}
}

// MaxFindings bounds the findings a Report lists; Defects and RetentionCuts
// count all of them.
const MaxFindings = 10000

// Report is the outcome of Verify.
type Report struct {
	Stream string `json:"stream"`
	Filter string `json:"filter"`
	// StreamFirstSeq is the first sequence the stream held as the walk began.
	StreamFirstSeq uint64 `json:"stream_first_seq"`
	// FirstStreamSeq and LastStreamSeq bound the messages checked.
	FirstStreamSeq uint64    `json:"first_stream_seq"`
	LastStreamSeq  uint64    `json:"last_stream_seq"`
	Events         uint64    `json:"events"`
	Subjects       int       `json:"subjects"`
	Defects        int       `json:"defects"`
	RetentionCuts  int       `json:"retention_cuts"`
	Findings       []Finding `json:"findings"`
	// Omitted counts findings not listed because of MaxFindings.
	Omitted int `json:"omitted,omitempty"`
}

// OK says the history checked is whole.
func (r *Report) OK() bool { return r.Defects == 0 }

func (r *Report) add(fs []Finding) {
	for _, f := range fs {
		if f.Defect() {
			r.Defects++
		} else {
			r.RetentionCuts++
		}
		if len(r.Findings) < MaxFindings {
			r.Findings = append(r.Findings, f)
		} else {
			r.Omitted++
		}
	}
}

// Verify walks the messages r selects and checks every subject's history.
// An error means the walk could not finish; defects are in the Report.
func Verify(ctx context.Context, js jetstream.JetStream, r Range, progress Progress) (*Report, error) {
	r, err := r.withDefaults()
	if err != nil {
		return nil, err
	}
	if !r.Until.IsZero() {
		return nil, fmt.Errorf("%w: verify reads to the end of the stream", ErrBadRange)
	}
	rep := &Report{Stream: r.Stream, Filter: r.Filter, Findings: []Finding{}}
	var c *Checker
	err = walk(ctx, js, r, progress, func(state jetstream.StreamState) {
		rep.StreamFirstSeq = state.FirstSeq
		c = NewChecker(startOf(r, state))
	}, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		if rep.FirstStreamSeq == 0 {
			rep.FirstStreamSeq = md.Sequence.Stream
		}
		rep.LastStreamSeq = md.Sequence.Stream
		rep.add(c.Check(md.Sequence.Stream, m.Subject(), m.Data()))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if c != nil {
		rep.Events, rep.Subjects = c.Events(), c.Subjects()
	}
	return rep, nil
}
