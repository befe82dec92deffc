package main

import "time"

// Options is one benchmark run's settings (the flags).
type Options struct {
	Scenario          string        `json:"scenario"`
	Seed              int64         `json:"seed"`
	Agents            int           `json:"agents"`
	SignedIn          float64       `json:"signed_in_share"`
	CallsPerHour      float64       `json:"calls_per_agent_hour"`
	MeanCall          time.Duration `json:"mean_call_duration"`
	SoftphonePerHour  float64       `json:"softphone_changes_per_hour"`
	PhoneFlapsPerHour float64       `json:"phone_flaps_per_hour"`
	Duration          time.Duration `json:"bridge_phase"`
	Tail              time.Duration `json:"tail_excluded"`
	Interval          time.Duration `json:"calls_interval"`
	Idle              time.Duration `json:"idle_interval"`
	ActiveWindow      time.Duration `json:"active_window"`
	Roster            time.Duration `json:"roster_interval"`
	Phones            time.Duration `json:"phones_interval"`
	Budget            float64       `json:"budget"`
	Concurrency       int           `json:"concurrency"`
	Faults            bool          `json:"faults"`
	NATS              string        `json:"nats_url,omitempty"`
	BasePoll          time.Duration `json:"bare_poll_duration"`
	LookupDur         time.Duration `json:"lookup_duration"`
	LookupConc        int           `json:"lookup_concurrency"`
	PubRecords        int           `json:"publish_records"`
	BridgeBuffer      int           `json:"bridge_buffer_events,omitempty"`
	CPUProfile        string        `json:"cpu_profile,omitempty"`
	ProgressEvery     time.Duration `json:"-"`
}

// Machine describes where a run happened.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Host       string `json:"host"`
}

// BridgePhase is what the bridge did while the workload ran.
type BridgePhase struct {
	Seconds         float64          `json:"seconds"`
	Polls           int64            `json:"allcallinfoex_requests"`
	PollsPerSec     float64          `json:"polls_per_sec"`
	PeakPollsPerSec float64          `json:"peak_polls_per_sec"` // best 1 s sample
	PeakSecond      float64          `json:"peak_second"`
	Upstream        int64            `json:"upstream_requests"` // every simulator endpoint
	UpstreamByName  map[string]int64 `json:"upstream_by_endpoint"`
	MaxReqPerSec    float64          `json:"max_upstream_per_sec"` // best 1 s sample, query endpoints
	Events          int              `json:"events"`
	EventsPerSec    float64          `json:"events_per_sec"`
	MeanEventBytes  int              `json:"mean_event_bytes"`
	CPUSec          float64          `json:"cpu_seconds"`
	CPUPer1k        float64          `json:"cpu_seconds_per_1k_requests"`
	Tracked         int              `json:"agents_tracked"` // from the last heartbeat
	SignedIn        int              `json:"sim_signed_in_at_end"`
	ActiveEstimate  int              `json:"active_estimate"` // agents in or recently in a call at the end (truth)
	HeapPerAgent    float64          `json:"heap_bytes_per_tracked_agent"`
	RSSPerAgent     float64          `json:"rss_bytes_per_tracked_agent"`
	MemBefore       memSample        `json:"mem_before"`
	MemAfter        memSample        `json:"mem_after"`
	MemStopped      memSample        `json:"mem_stopped"`
	// ProcessHeapPerAgent is the whole process's heap growth over the
	// bridge phase per agent: it also holds the simulator's growing truth,
	// this harness's event log and the NATS server's caches.
	ProcessHeapPerAgent float64        `json:"process_heap_growth_bytes_per_tracked_agent"`
	ReqPerChange        float64        `json:"upstream_requests_per_detected_change"`
	Faults              []string       `json:"faults_applied,omitempty"`
	VisibilityLost      map[string]int `json:"visibility_lost"` // entities reported not visible, per scope
}

// Targets records each scenario target and whether it was met.
type Target struct {
	Name  string  `json:"name"`
	Scope string  `json:"scope"` // "target" of this scenario, or "info"
	Want  string  `json:"want"`
	Got   float64 `json:"got"`
	Met   bool    `json:"met"`
}

// Result is every figure of a run.
type Result struct {
	Started  time.Time          `json:"started"`
	Options  Options            `json:"options"`
	Machine  Machine            `json:"machine"`
	BarePoll PollResult         `json:"bare_poll"`
	Capacity CapacityResult     `json:"capacity"`
	Bridge   BridgePhase        `json:"bridge"`
	Score    Score              `json:"detection"`
	Ratios   map[string]float64 `json:"ratios"`
	Lookups  LookupResult       `json:"lookups"`
	Publish  PublishResult      `json:"publish"`
	Targets  []Target           `json:"targets"`
	Notes    []string           `json:"notes"`
	WallSec  float64            `json:"wall_seconds"`
}
