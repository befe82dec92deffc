package subscriber

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/schemas"
)

// history reads the events stream as it stood at a past instant through
// JetStream's direct get API (nats-server 2.11 or later; the streams must
// allow direct get, as the publisher provisions them). The server's indexes
// do the work: its time index finds the last sequence stored at or before
// the instant, and a multi-last get with up_to_seq returns the last message
// of each subject up to it, so nothing walks the stream.
//
// One history serves one lookup: its gets share one reply subscription.
type history struct {
	nc     *nats.Conn
	events string
	state  string

	sub   *nats.Subscription // replies to inbox.<n>
	inbox string
	n     int
}

// close drops the reply subscription.
func (h *history) close() {
	if h.sub != nil {
		_ = h.sub.Unsubscribe()
	}
}

// directGetPrefix is the API subject of direct gets, followed by the
// stream name. The default JetStream domain and API prefix are assumed.
const directGetPrefix = "$JS.API.DIRECT.GET."

// multiLastMax is how many subjects one multi-last request may name: the
// server answers at most 1024 messages to one.
const multiLastMax = 1000

type directGet struct {
	Seq       uint64     `json:"seq,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	LastFor   string     `json:"last_by_subj,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	MultiLast []string   `json:"multi_last,omitempty"`
	UpToSeq   uint64     `json:"up_to_seq,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
}

// storedMsg is one message as a direct get returns it.
type storedMsg struct {
	subject string
	seq     uint64
	stored  time.Time
	header  nats.Header
	data    []byte
}

// errHistory marks a direct get the server refused or could not answer.
var errHistory = errors.New("subscriber: history not readable")

// get sends one direct get and collects its answer: one message (nil when
// there is none), or for a multi-last request every message up to the
// end-of-batch status.
func (h *history) get(ctx context.Context, stream string, req directGet) ([]storedMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("subscriber: direct get: %w", err)
	}
	if h.sub == nil {
		h.inbox = nats.NewInbox()
		if h.sub, err = h.nc.SubscribeSync(h.inbox + ".*"); err != nil {
			return nil, fmt.Errorf("subscriber: direct get: %w", err)
		}
	}
	h.n++
	reply := h.inbox + "." + strconv.Itoa(h.n)
	if err := h.nc.PublishRequest(directGetPrefix+stream, reply, body); err != nil {
		return nil, fmt.Errorf("subscriber: direct get: %w", err)
	}
	multi := len(req.MultiLast) > 0 || req.Batch > 0
	var out []storedMsg
	for {
		m, err := h.sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("subscriber: direct get from %s: %w", stream, err)
		}
		if m.Subject != reply {
			continue // a late answer to an earlier get that gave up
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "204": // end of a multi-last batch
			return out, nil
		case "404":
			return out, nil
		case "503":
			return nil, fmt.Errorf("%w: no direct get on stream %s (does it allow direct get?)", errHistory, stream)
		default:
			return nil, fmt.Errorf("%w: direct get from %s: %s %s", errHistory, stream, status, m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: direct get from %s: no sequence", errHistory, stream)
		}
		ts, err := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
		if err != nil {
			return nil, fmt.Errorf("%w: direct get from %s: no timestamp", errHistory, stream)
		}
		out = append(out, storedMsg{subject: m.Header.Get(jetstream.SubjectHeader), seq: seq, stored: ts, header: m.Header, data: m.Data})
		if !multi {
			return out, nil
		}
	}
}

// point is a past instant located in the events stream.
type point struct {
	at           time.Time
	upTo         uint64 // last sequence stored at or before at
	retainedFrom time.Time
}

// errBeforeRetention is answered 409: the events of that time are gone.
type errBeforeRetention struct{ at, from time.Time }

func (e *errBeforeRetention) Error() string {
	if e.from.IsZero() {
		return "as_of " + e.at.UTC().Format(time.RFC3339) + " is outside the retention: the events stream holds no events"
	}
	return "as_of " + e.at.UTC().Format(time.RFC3339) + " is before the events stream's retention, which starts at " +
		e.from.UTC().Format(time.RFC3339Nano)
}

// locate finds the last sequence stored at or before at, and refuses an
// instant the stream no longer covers. Three direct gets, served by the
// stream itself: its first message, the first message stored after at,
// and (when there is none) its last message.
func (h *history) locate(ctx context.Context, at time.Time) (point, error) {
	first, err := h.get(ctx, h.events, directGet{Seq: 1, Batch: 1})
	if err != nil {
		return point{}, err
	}
	if len(first) == 0 {
		return point{}, &errBeforeRetention{at: at}
	}
	if at.Before(first[0].stored) {
		return point{}, &errBeforeRetention{at: at, from: first[0].stored}
	}
	p := point{at: at, retainedFrom: first[0].stored}
	after := at.Add(time.Nanosecond)
	next, err := h.get(ctx, h.events, directGet{StartTime: &after})
	if err != nil {
		return point{}, err
	}
	if len(next) == 1 {
		p.upTo = next[0].seq - 1
		return p, nil
	}
	// Nothing stored after at: everything up to the last message counts.
	last, err := h.get(ctx, h.events, directGet{LastFor: ">"})
	if err != nil || len(last) == 0 {
		return point{}, cmp.Or(err, fmt.Errorf("%w: stream %s emptied", errHistory, h.events))
	}
	p.upTo = last[0].seq
	return p, nil
}

// source is where one subject's state at a point came from.
type source struct {
	streamSeq uint64 // CEC_EVENTS sequence of the event (0: aged out)
	id        string
	from      string
}

// changeFields is the part of an entity change the rebuild reads, whatever
// the entity's state type.
type changeFields struct {
	Op       schemas.Op       `json:"op"`
	Key      schemas.Key      `json:"key"`
	Seq      uint64           `json:"seq"`
	PrevID   string           `json:"prev_id,omitempty"`
	Before   json.RawMessage  `json:"before"`
	After    json.RawMessage  `json:"after"`
	Detected schemas.Detected `json:"detected"`
}

// rebuild applies to pv the state of each subject at p, and returns where
// each state came from (subjects that did not exist then are absent). For
// every subject it takes the last event stored at or before p; for one
// whose events of that time have aged out, the before of its first event
// after p, or its last event of all (CEC_STATE) when it has not changed
// since.
func (h *history) rebuild(ctx context.Context, pv *View, p point, subjects []string) (map[string]source, error) {
	out := make(map[string]source, len(subjects))
	for len(subjects) > 0 {
		chunk := subjects[:min(len(subjects), multiLastMax)]
		subjects = subjects[len(chunk):]
		msgs, err := h.get(ctx, h.events, directGet{MultiLast: chunk, UpToSeq: p.upTo})
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			pv.apply(m.seq, m.subject, m.data)
			out[m.subject] = source{streamSeq: m.seq, id: eventID(m.data), from: schemas.AsOfEvent}
		}
		var missing []string
		for _, s := range chunk {
			if _, ok := out[s]; !ok {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			continue
		}
		// What has not changed since before the retention is in CEC_STATE.
		lasts, err := h.get(ctx, h.state, directGet{MultiLast: missing})
		if err != nil {
			return nil, err
		}
		for _, m := range lasts {
			if schemas.OriginSeq(m.header.Get(schemas.SourceHeader)) > p.upTo {
				// It changed after p: its state at p is the before of
				// its first event after p.
				if err := h.nextBefore(ctx, pv, p, m.subject, out); err != nil {
					return nil, err
				}
				continue
			}
			pv.apply(0, m.subject, m.data)
			out[m.subject] = source{id: eventID(m.data), from: schemas.AsOfState}
		}
	}
	return out, nil
}

// nextBefore applies the before of subject's first event after p, when
// that event has one (the entity existed at p).
func (h *history) nextBefore(ctx context.Context, pv *View, p point, subject string, out map[string]source) error {
	next, err := h.get(ctx, h.events, directGet{Seq: p.upTo + 1, NextFor: subject})
	if err != nil || len(next) == 0 {
		return err
	}
	var ev schemas.Event
	var c changeFields
	if json.Unmarshal(next[0].data, &ev) != nil || json.Unmarshal(ev.Data, &c) != nil {
		return nil // not an entity change: nothing to rebuild from
	}
	if c.Seq <= 1 || len(c.Before) == 0 || string(c.Before) == "null" {
		return nil // the entity did not exist at p
	}
	prior := changeFields{Op: schemas.OpUpdate, Key: c.Key, Seq: c.Seq - 1, After: c.Before, Before: json.RawMessage("null")}
	if c.Detected.AfterPoll != nil {
		// The last poll that still saw the old state observed it then.
		prior.Detected.ByPoll = *c.Detected.AfterPoll
	}
	data, err := json.Marshal(prior)
	if err != nil {
		return fmt.Errorf("subscriber: rebuild %s: %w", subject, err)
	}
	ev.ID, ev.Data = c.PrevID, data
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("subscriber: rebuild %s: %w", subject, err)
	}
	pv.apply(0, subject, body)
	out[subject] = source{id: c.PrevID, from: schemas.AsOfNextBefore}
	return nil
}

func eventID(body []byte) string {
	var ev struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &ev)
	return ev.ID
}

// visibility applies to pv the tenant's visibility at p: its last
// heartbeat and its last states picture at or before p (each a whole
// picture), then the visibility events stored after that heartbeat up to
// p.
func (h *history) visibility(ctx context.Context, pv *View, p point, tenant string) error {
	hbSubj, visSubj := schemas.BridgeSubject(tenant, schemas.BridgeHeartbeat), schemas.BridgeSubject(tenant, schemas.BridgeVisibility)
	statesSubj := schemas.BridgeSubject(tenant, schemas.BridgeStatesVisibility)
	lasts, err := h.get(ctx, h.events, directGet{MultiLast: []string{hbSubj, statesSubj}, UpToSeq: p.upTo})
	if err != nil {
		return err
	}
	from := uint64(1)
	for _, last := range lasts {
		pv.apply(last.seq, last.subject, last.data)
		if last.subject == hbSubj {
			from = last.seq + 1
		}
	}
	for from <= p.upTo {
		next, err := h.get(ctx, h.events, directGet{Seq: from, NextFor: visSubj})
		if err != nil {
			return err
		}
		if len(next) == 0 || next[0].seq > p.upTo {
			return nil
		}
		pv.apply(next[0].seq, visSubj, next[0].data)
		from = next[0].seq + 1
	}
	return nil
}

// newPastView returns an empty view of one tenant, to be filled by a
// rebuild and read with the usual read methods.
func newPastView(tenant string, upTo uint64) *View {
	v := &View{cfg: ViewConfig{Tenants: []string{tenant}}, log: slog.New(slog.DiscardHandler),
		ready: make(chan struct{}), tenants: map[string]*tenantState{}}
	close(v.ready)
	v.applied = upTo
	return v
}
