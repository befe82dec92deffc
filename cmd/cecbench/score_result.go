package main

import (
	"math"
	"slices"
	"time"
)

// Latency is a distribution summary in milliseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// GroupScore is the detection quality for one group of changes.
type GroupScore struct {
	Changes     int     `json:"changes"` // eligible truth changes
	Seen        int     `json:"seen"`
	MissedShort int     `json:"missed_shorter_than_interval"`
	MissedOther int     `json:"missed_other"`
	Long        int     `json:"lasting_2_intervals"`
	LongSeen    int     `json:"lasting_2_intervals_seen"`
	Recall      float64 `json:"recall"`
	RecallLong  float64 `json:"recall_lasting_2_intervals"`
	// Lasting2s counts the changes whose new state held for lastingFixed
	// or longer, whatever the group's interval.
	Lasting2s       int      `json:"lasting_2s"`
	Lasting2sSeen   int      `json:"lasting_2s_seen"`
	RecallLasting2s float64  `json:"recall_lasting_2s"`
	Latency         Latency  `json:"latency_by_poll"`
	LatencyE2E      Latency  `json:"latency_to_stream"`
	SignedInLat     Latency  `json:"latency_signed_in"`
	Interval        string   `json:"interval"`
	MissedSample    []string `json:"missed_sample,omitempty"`

	// With excused spans (the chaos drill): changes that lasted two
	// intervals only counting excused time, and those missed for it; the
	// changes that began and ended inside the NATS outage.
	LongExcused    int `json:"lasting_2_intervals_only_with_excused_time,omitempty"`
	MissedExcused  int `json:"missed_in_excused_time,omitempty"`
	OutageLong     int `json:"outage_lasting_2_intervals,omitempty"`
	OutageLongSeen int `json:"outage_lasting_2_intervals_seen,omitempty"`
	// LongMissedSample names missed changes that lasted two intervals.
	LongMissedSample []string `json:"long_missed_sample,omitempty"`
}

// Score is the detection quality of a run.
type Score struct {
	Events       int                    `json:"events"` // entity events read
	Snapshots    int                    `json:"snapshots"`
	Facts        int                    `json:"facts"` // changes the events assert
	False        int                    `json:"false"`
	Duplicates   int                    `json:"duplicates"`
	SeqGaps      int                    `json:"seq_gaps"`
	PreSnapshot  int                    `json:"matched_before_snapshot"`
	OutOfWindow  int                    `json:"matched_outside_window"`
	Roster       int                    `json:"roster_events"` // create/delete tied to roster truth
	Groups       map[string]*GroupScore `json:"groups"`
	Calls        GroupScore             `json:"calls_all"`
	FalseSample  []string               `json:"false_sample,omitempty"`
	DupSample    []string               `json:"duplicate_sample,omitempty"`
	TruthInRange int                    `json:"truth_changes_in_window"`
	// UnstoredSeen counts truth changes only an unstored event detected.
	UnstoredSeen int `json:"seen_only_unstored,omitempty"`
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

func summarise(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	return Latency{N: len(d), P50: pct(d, 0.50), P95: pct(d, 0.95), P99: pct(d, 0.99), Max: pct(d, 1)}
}

// ratio is a/b, or NaN-free 0 when b is 0... except that an empty set has
// perfect recall.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 1
	}
	return a / b
}

func lifetimeString(d time.Duration) string {
	if d == time.Duration(math.MaxInt64) {
		return "to the end"
	}
	return d.Round(time.Millisecond).String()
}
