package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// Integrity is what a consumer of the entity subjects would find wrong
// with the history, read in stream order.
type Integrity struct {
	Subjects     int      `json:"subjects"`
	Events       int      `json:"events"`
	DuplicateIDs int      `json:"duplicate_ids"`        // an event id stored more than once
	Identical    int      `json:"identical_duplicates"` // ... with the very same body
	Forks        int      `json:"forks"`                // one subject and seq stored with two bodies
	Holes        int      `json:"seq_holes"`
	Repeats      int      `json:"seq_repeats"` // a seq not above the subject's previous one
	BrokenLinks  int      `json:"broken_prev_id_links"`
	BadIDs       int      `json:"ids_not_from_subject_and_seq"`
	Samples      []string `json:"samples,omitempty"`
}

func sample(list *[]string, format string, args ...any) {
	if len(*list) < 12 {
		*list = append(*list, fmt.Sprintf(format, args...))
	}
}

// checkIntegrity checks every entity subject's history: ids, seqs from 1
// without holes or repeats, prev_id naming the event stored before, one
// body per seq.
func checkIntegrity(events []observed) Integrity {
	type key struct {
		subject string
		seq     uint64
	}
	var in Integrity
	bodies := map[key][]uint64{}
	ids := map[string]bool{}
	last := map[string]observed{}
	for _, e := range events {
		in.Events++
		k := key{e.Subject, e.Seq}
		if ids[e.ID] {
			in.DuplicateIDs++
			if slices.Contains(bodies[k], e.Digest) {
				in.Identical++
			}
			sample(&in.Samples, "%s seq %d: id %s stored again (stream seq %d)", e.Subject, e.Seq, e.ID, e.StreamSeq)
		}
		ids[e.ID] = true
		if !slices.Contains(bodies[k], e.Digest) {
			bodies[k] = append(bodies[k], e.Digest)
			if len(bodies[k]) == 2 {
				in.Forks++
				sample(&in.Samples, "%s seq %d: a second, different event (stream seq %d): a fork", e.Subject, e.Seq, e.StreamSeq)
			}
		}
		if e.ID != schemas.EventID(e.Subject, e.Seq) {
			in.BadIDs++
		}
		p, seen := last[e.Subject]
		switch {
		case !seen && e.Seq != 1:
			in.Holes++
			sample(&in.Samples, "%s starts at seq %d", e.Subject, e.Seq)
		case seen && e.Seq <= p.Seq:
			in.Repeats++
			sample(&in.Samples, "%s seq %d after seq %d (stream seq %d)", e.Subject, e.Seq, p.Seq, e.StreamSeq)
		case seen && e.Seq > p.Seq+1:
			in.Holes++
			sample(&in.Samples, "%s seq %d after seq %d: %d missing", e.Subject, e.Seq, p.Seq, e.Seq-p.Seq-1)
		}
		want := ""
		if seen {
			want = p.ID
		}
		if e.PrevID != want {
			in.BrokenLinks++
		}
		last[e.Subject] = e
	}
	in.Subjects = len(last)
	return in
}

// termOf is the lease term a message id carries after the event id
// ("<event-id>.<term>"), if any.
func termOf(msgID, eventID string) (string, bool) {
	rest, ok := strings.CutPrefix(msgID, eventID+".")
	if !ok || rest == "" {
		return "", false
	}
	return rest, true
}

// StaleWrites are messages stored under a lease term that had already
// ended: a message whose term (in its Nats-Msg-Id) is older than a term that
// has already written.
type StaleWrites struct {
	ByTerm  bool       `json:"attributed_by_term"`
	Stale   int        `json:"stale_messages"` // by term
	Terms   []TermInfo `json:"terms,omitempty"`
	Samples []string   `json:"samples,omitempty"`

	// The SIGSTOP: what the paused holder's term wrote after the standby
	// took over (none may reach the stream).
	PausedTerms  []string `json:"paused_terms,omitempty"`
	PausedWrites int      `json:"paused_term_writes_after_takeover"`
}

// TermInfo is one lease term as the stream and the logs show it.
type TermInfo struct {
	Term        string    `json:"term"`
	Writer      string    `json:"writer,omitempty"` // from its heartbeats' instance
	LoggedBy    string    `json:"logged_by,omitempty"`
	FirstStored time.Time `json:"first_stored"`
	Messages    int       `json:"messages"`
	Stale       int       `json:"stale"`
}

// msgRef is a stored message as the stale-write check needs it.
type msgRef struct {
	seq    uint64
	stored time.Time
	term   string
	writer string
	what   string
}

func staleByTerm(h *history, loggedBy map[string]string, pauses []pauseRecord) StaleWrites {
	var refs []msgRef
	for _, e := range h.Entity {
		t, _ := termOf(e.MsgID, e.ID)
		refs = append(refs, msgRef{seq: e.StreamSeq, stored: e.Stored, term: t, what: fmt.Sprintf("%s seq %d", e.Subject, e.Seq)})
	}
	for _, hb := range h.Heartbeats {
		t, _ := termOf(hb.MsgID, hb.ID)
		refs = append(refs, msgRef{seq: hb.StreamSeq, stored: hb.Stored, term: t, writer: hb.Instance, what: "heartbeat of " + hb.Instance})
	}
	slices.SortFunc(refs, func(a, b msgRef) int { return cmp.Compare(a.seq, b.seq) })
	var sw StaleWrites
	rank := map[string]int{}
	info := map[string]*TermInfo{}
	latest := -1
	for _, r := range refs {
		if r.term == "" {
			continue
		}
		sw.ByTerm = true
		ti := info[r.term]
		if ti == nil {
			rank[r.term] = len(rank)
			ti = &TermInfo{Term: r.term, LoggedBy: loggedBy[r.term], FirstStored: r.stored}
			info[r.term] = ti
			sw.Terms = append(sw.Terms, TermInfo{})
		}
		ti.Messages++
		if r.writer != "" && ti.Writer == "" {
			ti.Writer = r.writer
		}
		if rk := rank[r.term]; rk < latest {
			ti.Stale++
			sw.Stale++
			sample(&sw.Samples, "%s (stream seq %d) under term %s after a later term had written", r.what, r.seq, r.term)
		} else {
			latest = rk
		}
	}
	for term, ti := range info {
		sw.Terms[rank[term]] = *ti
	}
	pausedWrites(&sw, refs, pauses)
	return sw
}

// pausedWrites counts, for each pause, the messages stored after the
// standby's takeover under the term the paused holder was writing with
// (the term of the last message stored before the SIGSTOP).
func pausedWrites(sw *StaleWrites, refs []msgRef, pauses []pauseRecord) {
	for _, p := range pauses {
		if p.takeover.IsZero() {
			continue
		}
		term := ""
		for _, r := range refs {
			if r.stored.Before(p.stopped) && r.term != "" {
				term = r.term
			}
		}
		if term == "" {
			continue
		}
		sw.PausedTerms = append(sw.PausedTerms, term)
		for _, r := range refs {
			if r.term == term && r.stored.After(p.takeover) {
				sw.PausedWrites++
				sample(&sw.Samples, "%s (stream seq %d) under the paused holder's term %s, %.1fs after the takeover", r.what, r.seq, term, r.stored.Sub(p.takeover).Seconds())
			}
		}
	}
}

// slotPoll is one call-ID poll, by which instance.
type slotPoll struct {
	at   time.Time
	slot string
}

func firstAtOrAfter(ts []time.Time, t time.Time) (int, bool) {
	i, _ := slices.BinarySearchFunc(ts, t, func(a, b time.Time) int { return a.Compare(b) })
	return i, i < len(ts)
}

func firstPollAfter(polls []slotPoll, t time.Time) (slotPoll, bool) {
	i, _ := slices.BinarySearchFunc(polls, t, func(a slotPoll, b time.Time) int { return a.at.Compare(b) })
	if i == len(polls) {
		return slotPoll{}, false
	}
	return polls[i], true
}

// longestGap is the longest stretch of [from, to] without a poll, and
// where it began.
func longestGap(polls []slotPoll, from, to time.Time) (time.Duration, time.Time) {
	prev, best, at := from, time.Duration(0), from
	for _, p := range polls {
		if p.at.Before(from) {
			continue
		}
		if p.at.After(to) {
			break
		}
		if g := p.at.Sub(prev); g > best {
			best, at = g, prev
		}
		prev = p.at
	}
	if g := to.Sub(prev); g > best {
		best, at = g, prev
	}
	return best, at
}

// BlindTime is how long nobody polled: per restart, from the new process's
// start (or NATS's return, for a restart during the outage) to the first
// call-ID poll of anyone; per takeover; and across the run.
type BlindTime struct {
	Restarts       []RestartBlind `json:"restarts"`
	MaxRestart     float64        `json:"max_restart_blind_s"`
	LongestGap     float64        `json:"longest_gap_s"`
	LongestGapAt   float64        `json:"longest_gap_at_s"`
	OutageGap      float64        `json:"longest_gap_in_outage_s"` // before the kill in it
	PauseTakeovers []float64      `json:"pause_to_takeover_s"`
	TermStarts     []TermStart    `json:"term_starts"`
}

// RestartBlind is one restart's blind time.
type RestartBlind struct {
	Slot      string  `json:"instance"`
	KilledAt  float64 `json:"killed_at_s"`
	Down      float64 `json:"down_s"`
	InOutage  bool    `json:"in_outage"`
	Blind     float64 `json:"blind_s"`      // from the start (or NATS's return) to a poll
	SinceKill float64 `json:"since_kill_s"` // from the kill to a poll
	FirstBy   string  `json:"first_poll_by"`
}

// TermStart is a lease acquisition in a bridge's log and how long its
// first call-ID poll took after it.
type TermStart struct {
	Slot      string  `json:"instance"`
	PID       int     `json:"pid"`
	At        float64 `json:"at_s"`
	FirstPoll float64 `json:"first_poll_after_s"` // -1: none
}
