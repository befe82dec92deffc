package audit

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/cecbridge/cecbridge/schemas"
)

// Msg is one stored event as a reader of the events stream received it.
type Msg struct {
	StreamSeq uint64
	Subject   string
	Data      []byte
}

// History is the outcome of CheckHistory.
type History struct {
	Events      int `json:"events"`
	Subjects    int `json:"subjects"`
	Undecodable int `json:"undecodable"`
	Duplicates  int `json:"duplicates"`
	Forks       int `json:"forks"`
	Holes       int `json:"holes"`
	BrokenLinks int `json:"broken_links"`
	// Problems describes the first problems found, for a test failure or a
	// report.
	Problems []string `json:"problems,omitempty"`
}

// Clean reports whether the history breaks no rule.
func (h History) Clean() bool {
	return h.Undecodable+h.Duplicates+h.Forks+h.Holes+h.BrokenLinks == 0
}

const maxProblems = 20

func (h *History) problem(format string, args ...any) {
	if len(h.Problems) < maxProblems {
		h.Problems = append(h.Problems, fmt.Sprintf(format, args...))
	}
}

// position is what a subject holds at one seq.
type position struct {
	id   string
	body []byte
}

// subjectLog is one subject's history so far.
type subjectLog struct {
	last uint64 // highest seq stored
	held map[uint64]position
}

// CheckHistory checks the events of tenant ("" for every tenant) in msgs,
// which must be in stream order.
func CheckHistory(tenant string, msgs []Msg) History {
	var h History
	subjects := map[string]*subjectLog{}
	for _, m := range msgs {
		ps, err := schemas.ParseSubject(m.Subject)
		if err != nil || (tenant != "" && ps.Tenant != tenant) {
			continue
		}
		h.Events++
		var ev schemas.Event
		var d struct {
			Seq    uint64 `json:"seq"`
			PrevID string `json:"prev_id"`
		}
		if json.Unmarshal(m.Data, &ev) != nil || json.Unmarshal(ev.Data, &d) != nil || d.Seq == 0 {
			h.Undecodable++
			h.problem("%s stream seq %d: undecodable event", m.Subject, m.StreamSeq)
			continue
		}
		sl := subjects[m.Subject]
		if sl == nil {
			sl = &subjectLog{held: map[uint64]position{}}
			subjects[m.Subject] = sl
		}
		if p, ok := sl.held[d.Seq]; ok {
			if p.id == ev.ID && bytes.Equal(p.body, m.Data) {
				h.Duplicates++
				h.problem("%s seq %d: event %s stored twice (stream seq %d)", m.Subject, d.Seq, ev.ID, m.StreamSeq)
			} else {
				h.Forks++
				h.problem("%s seq %d: a second, different event (stream seq %d)", m.Subject, d.Seq, m.StreamSeq)
			}
			continue
		}
		switch {
		case d.Seq > sl.last+1:
			h.Holes += int(d.Seq - sl.last - 1)
			h.problem("%s: seq %d after %d", m.Subject, d.Seq, sl.last)
		case d.Seq < sl.last:
			h.Holes++
			h.problem("%s: seq %d stored after %d", m.Subject, d.Seq, sl.last)
		}
		if prev, ok := sl.held[d.Seq-1]; ok && d.PrevID != prev.id {
			h.BrokenLinks++
			h.problem("%s seq %d: prev_id %s, the event before is %s", m.Subject, d.Seq, d.PrevID, prev.id)
		}
		sl.held[d.Seq] = position{id: ev.ID, body: m.Data}
		sl.last = max(sl.last, d.Seq)
	}
	h.Subjects = len(subjects)
	return h
}
