package app

import (
	"bytes"
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/schemas"
)

// detection measures how late the bridge can have seen each change: the
// time between the last poll that still saw the old state and the first
// that saw the new one (the event's data.detected), per tenant. The
// change happened somewhere in between, so this bounds the detection
// latency from above.
type detection struct {
	window *prometheus.HistogramVec
}

func newDetection(reg prometheus.Registerer) *detection {
	d := &detection{window: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cecbridge_detection_window_seconds",
		Help:    "Time between the last poll that saw an entity's old state and the first that saw its new one (an upper bound on detection latency), per change event.",
		Buckets: []float64{.1, .25, .5, 1, 1.5, 2, 3, 5, 10, 15, 20, 30, 60, 120},
	}, []string{"tenant"})}
	reg.MustRegister(d.window)
	return d
}

// sink wraps the sink of one tenant's poller.
func (d *detection) sink(tenant string, next poller.Sink) poller.Sink {
	return detectionSink{next: next, window: d.window.WithLabelValues(tenant)}
}

type detectionSink struct {
	next   poller.Sink
	window prometheus.Observer
}

// Emit implements poller.Sink: the measurement is taken for accepted
// events only, from the encoded body (no second decode of the event).
func (s detectionSink) Emit(ctx context.Context, rec schemas.Record) error {
	if err := s.next.Emit(ctx, rec); err != nil {
		return err
	}
	if w, ok := detectionWindow(rec.Body); ok {
		s.window.Observe(w.Seconds())
	}
	return nil
}

var (
	afterPollKey = []byte(`"after_poll":"`)
	byPollKey    = []byte(`"by_poll":"`)
)

// detectionWindow reads data.detected of an encoded event; snapshots and
// bridge events have no after_poll and give false.
func detectionWindow(body []byte) (time.Duration, bool) {
	after, ok := timeAfter(body, afterPollKey)
	if !ok {
		return 0, false
	}
	by, ok := timeAfter(body, byPollKey)
	if !ok || by.Before(after) {
		return 0, false
	}
	return by.Sub(after), true
}

func timeAfter(body, key []byte) (time.Time, bool) {
	i := bytes.Index(body, key)
	if i < 0 {
		return time.Time{}, false
	}
	rest := body[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return t, err == nil
}
