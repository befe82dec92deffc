package audit

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// Kind names what a Finding found.
type Kind string

// The kinds of finding; see the package documentation.
const (
	KindHole         Kind = "hole"
	KindDuplicate    Kind = "duplicate"
	KindFork         Kind = "fork"
	KindRepeat       Kind = "repeat"
	KindBrokenLink   Kind = "broken_link"
	KindBadID        Kind = "bad_id"
	KindBackwards    Kind = "backwards"
	KindUndecodable  Kind = "undecodable"
	KindRetentionCut Kind = "retention_cut"
)

// Finding is one thing a Checker noticed about one message of one subject.
type Finding struct {
	Kind      Kind   `json:"kind"`
	Subject   string `json:"subject"`
	StreamSeq uint64 `json:"stream_seq"`
	Seq       uint64 `json:"seq,omitempty"`
	Detail    string `json:"detail"`
}

// Defect says whether the finding means the history is not whole; a
// retention cut is expected and is not.
func (f Finding) Defect() bool { return f.Kind != KindRetentionCut }

func (f Finding) String() string {
	return fmt.Sprintf("%s #%d %s: %s", f.Subject, f.StreamSeq, f.Kind, f.Detail)
}

// Start says where, relative to the stream, a Checker's first message is.
type Start struct {
	// FromFirst is true when the walk begins at the first message the stream
	// holds, so a subject's first event seen has no stored predecessor.
	FromFirst bool
	// Trimmed is true when messages were removed from the front of the
	// stream (its first sequence is past 1): events before the first
	// message may have been there and aged out.
	Trimmed bool
}

// recentSeqs is how many (seq, digest) pairs a subject keeps to tell a
// duplicate from a fork.
const recentSeqs = 8

type seqDigest struct {
	seq    uint64
	digest uint64
	stream uint64
}

type subjectState struct {
	last   uint64 // highest seq seen
	lastID string // id of the event with seq last, as stored
	lastBy time.Time
	recent [recentSeqs]seqDigest
	next   int // ring position
}

func (s *subjectState) remember(seq, digest, stream uint64) {
	s.recent[s.next] = seqDigest{seq: seq, digest: digest, stream: stream}
	s.next = (s.next + 1) % recentSeqs
}

func (s *subjectState) find(seq uint64) (seqDigest, bool) {
	for _, r := range s.recent {
		if r.seq == seq && r.seq != 0 {
			return r, true
		}
	}
	return seqDigest{}, false
}

// Checker applies the history rules to messages fed in stream order. It is
// not safe for concurrent use.
type Checker struct {
	start    Start
	seed     maphash.Seed
	subjects map[string]*subjectState
	events   uint64
}

// NewChecker returns a checker for a walk that begins as start says.
func NewChecker(start Start) *Checker {
	return &Checker{start: start, seed: maphash.MakeSeed(), subjects: map[string]*subjectState{}}
}

// Events is how many messages the checker was fed.
func (c *Checker) Events() uint64 { return c.events }

// Subjects is how many distinct subjects it saw events on (an undecodable
// message does not count).
func (c *Checker) Subjects() int { return len(c.subjects) }

// seqData is the part of every event's data the rules need; entity events
// have Detected, bridge events do not.
type seqData struct {
	Seq      uint64            `json:"seq"`
	PrevID   string            `json:"prev_id"`
	Detected *schemas.Detected `json:"detected"`
}

// Check takes the message stored at streamSeq on subject and returns what it
// found (nothing for a message that continues its subject's history).
func (c *Checker) Check(streamSeq uint64, subject string, body []byte) []Finding {
	c.events++
	var out []Finding
	report := func(kind Kind, seq uint64, format string, args ...any) {
		out = append(out, Finding{Kind: kind, Subject: subject, StreamSeq: streamSeq, Seq: seq, Detail: fmt.Sprintf(format, args...)})
	}
	// One decoding pass over only the fields the rules need: walks are long.
	var ev struct {
		ID      string  `json:"id"`
		Subject string  `json:"subject"`
		Data    seqData `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		report(KindUndecodable, 0, "not a cecbridge event: %v", err)
		return out
	}
	data := ev.Data
	if data.Seq == 0 {
		report(KindUndecodable, 0, "event %s has no data.seq", ev.ID)
		return out
	}
	seq := data.Seq
	if ev.Subject != subject {
		report(KindBadID, seq, "the envelope names subject %s", ev.Subject)
	}
	if want := schemas.EventID(subject, seq); ev.ID != want {
		report(KindBadID, seq, "id %s is not the id of seq %d on this subject (%s)", ev.ID, seq, want)
	}
	if d := data.Detected; d != nil && d.AfterPoll != nil && d.AfterPoll.After(d.ByPoll) {
		report(KindBackwards, seq, "after_poll %s is later than by_poll %s", fmtTime(*d.AfterPoll), fmtTime(d.ByPoll))
	}
	digest := maphash.Bytes(c.seed, body)

	st := c.subjects[subject]
	if st == nil {
		st = &subjectState{}
		c.subjects[subject] = st
		c.first(subject, seq, data, report)
	} else {
		switch {
		case seq <= st.last:
			if prev, ok := st.find(seq); ok && prev.digest == digest {
				report(KindDuplicate, seq, "event %s stored again (first at stream seq %d)", ev.ID, prev.stream)
			} else if ok {
				report(KindFork, seq, "a second, different message with seq %d (the first at stream seq %d)", seq, prev.stream)
			} else {
				report(KindRepeat, seq, "seq %d again after seq %d", seq, st.last)
			}
			return out
		case seq > st.last+1:
			report(KindHole, seq, "seqs %s missing", span(st.last+1, seq-1))
			if want := schemas.EventID(subject, seq-1); data.PrevID != want {
				report(KindBrokenLink, seq, "prev_id %q is not the id of seq %d (%s)", data.PrevID, seq-1, want)
			}
		default:
			if data.PrevID != st.lastID {
				report(KindBrokenLink, seq, "prev_id %q does not name the previous event %s", data.PrevID, st.lastID)
			}
		}
		if d := data.Detected; d != nil && !st.lastBy.IsZero() {
			switch {
			case d.ByPoll.Before(st.lastBy):
				report(KindBackwards, seq, "by_poll %s is before the previous event's %s", fmtTime(d.ByPoll), fmtTime(st.lastBy))
			case d.AfterPoll != nil && d.AfterPoll.Before(st.lastBy):
				report(KindBackwards, seq, "after_poll %s is before the previous event's by_poll %s", fmtTime(*d.AfterPoll), fmtTime(st.lastBy))
			}
		}
	}
	st.last, st.lastID = seq, ev.ID
	if data.Detected != nil {
		st.lastBy = data.Detected.ByPoll
	}
	st.remember(seq, digest, streamSeq)
	return out
}

// first judges the first event seen on a subject.
func (c *Checker) first(subject string, seq uint64, data seqData, report func(Kind, uint64, string, ...any)) {
	if seq == 1 {
		if data.PrevID != "" {
			report(KindBrokenLink, seq, "the first event names a previous one (%s)", data.PrevID)
		}
		return
	}
	switch {
	case !c.start.FromFirst:
		// The walk began inside the stream: the predecessor may well be
		// stored before it.
	case c.start.Trimmed:
		report(KindRetentionCut, seq, "seqs %s are older than the stream's first message", span(1, seq-1))
	default:
		report(KindHole, seq, "seqs %s missing, and the stream has lost nothing to retention", span(1, seq-1))
	}
	if want := schemas.EventID(subject, seq-1); data.PrevID != want {
		report(KindBrokenLink, seq, "prev_id %q is not the id of seq %d (%s)", data.PrevID, seq-1, want)
	}
}

func span(from, to uint64) string {
	if from == to {
		return fmt.Sprint(from)
	}
	return fmt.Sprintf("%d-%d", from, to)
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
