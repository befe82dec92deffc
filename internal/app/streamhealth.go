package app

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// streamCheckEvery bounds how often the readiness probe and the metrics
// ask JetStream about the streams, however often they are scraped.
var streamCheckEvery = 5 * time.Second

// streamHealth is one stream's replica health as its leader reports it.
// Current counts the leader and the followers that are caught up; a
// lagging follower is reachable but behind; an offline one is not heard
// from. On a single server the one replica is the leader.
type streamHealth struct {
	Stream    string `json:"stream"`
	Reachable bool   `json:"reachable"`
	Leader    string `json:"leader,omitempty"`
	Replicas  int    `json:"replicas"` // configured
	Current   int    `json:"current"`
	Lagging   int    `json:"lagging"`
	Offline   int    `json:"offline"`
}

// replicaHealth reads the health out of a stream's info.
func replicaHealth(name string, info *jetstream.StreamInfo) streamHealth {
	h := streamHealth{Stream: name, Reachable: true, Replicas: max(info.Config.Replicas, 1)}
	ci := info.Cluster
	if ci == nil {
		h.Current = 1
		return h
	}
	h.Leader = ci.Leader
	if ci.Leader != "" {
		h.Current = 1
	}
	for _, p := range ci.Replicas {
		switch {
		case p.Offline:
			h.Offline++
		case p.Current:
			h.Current++
		default:
			h.Lagging++
		}
	}
	return h
}

// streamCheck caches the streams' health between checks.
type streamCheck struct {
	mu     sync.Mutex
	until  time.Time // when the cached health is asked for again
	health []streamHealth
}

// streamsHealth returns the health of the events and state streams,
// asking JetStream at most every streamCheckEvery. While NATS is away
// both are unreachable and nothing is asked.
func (b *Bridge) streamsHealth(ctx context.Context) []streamHealth {
	names := []string{b.cfg.Streams.Events, b.cfg.Streams.State}
	if b.nc.Status() != nats.CONNECTED {
		out := make([]streamHealth, len(names))
		for i, n := range names {
			out[i] = streamHealth{Stream: n, Replicas: b.cfg.Streams.Replicas}
		}
		return out
	}
	b.streamCheck.mu.Lock()
	defer b.streamCheck.mu.Unlock()
	if b.streamCheck.health != nil && time.Now().Before(b.streamCheck.until) {
		return slices.Clone(b.streamCheck.health)
	}
	health := make([]streamHealth, len(names))
	// A stream that did not answer is asked about again soon: it may be
	// being provisioned, and readiness should not trail it by a whole
	// streamCheckEvery.
	every := streamCheckEvery
	for i, n := range names {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := b.js.Stream(sctx, n)
		cancel()
		if err != nil {
			health[i] = streamHealth{Stream: n, Replicas: b.cfg.Streams.Replicas}
			every = min(every, 250*time.Millisecond)
			continue
		}
		health[i] = replicaHealth(n, s.CachedInfo())
	}
	if ctx.Err() == nil { // a probe given up by its caller says nothing of the streams
		b.streamCheck.health, b.streamCheck.until = health, time.Now().Add(every)
	}
	return slices.Clone(health)
}

// streamsReady reports whether both streams answer.
func (b *Bridge) streamsReady(ctx context.Context) bool {
	for _, h := range b.streamsHealth(ctx) {
		if !h.Reachable {
			return false
		}
	}
	return true
}

// forgetStreamsHealth makes the next check ask JetStream: the streams
// have just been provisioned.
func (b *Bridge) forgetStreamsHealth() {
	b.streamCheck.mu.Lock()
	b.streamCheck.health = nil
	b.streamCheck.mu.Unlock()
}

// replicaCollector reports cecbridge_stream_replicas{stream,state}.
type replicaCollector struct {
	b    *Bridge
	desc *prometheus.Desc
}

func newReplicaCollector(b *Bridge) replicaCollector {
	return replicaCollector{b: b, desc: prometheus.NewDesc("cecbridge_stream_replicas",
		"Replicas of the events and state streams by state: current (the leader and caught-up followers), lagging, offline.",
		[]string{"stream", "state"}, nil)}
}

func (c replicaCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c replicaCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, h := range c.b.streamsHealth(ctx) {
		for state, n := range map[string]int{"current": h.Current, "lagging": h.Lagging, "offline": h.Offline} {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), h.Stream, state)
		}
	}
}
