package poller

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// pacing says where a loop's interval is measured from.
type pacing int

const (
	// afterEnd waits the interval after a run ends: a walk of many pages
	// never runs back to back, whatever it costs.
	afterEnd pacing = iota
	// fromStart starts runs an interval apart, so how long a run takes does
	// not stretch the period. The sweep uses it: its period is the detection
	// latency. A run that outlasts the interval is still followed by a pause
	// of a quarter interval, so a slow CMS cannot take the whole budget.
	fromStart
)

// wait is the pause before the next run, given the planned (jittered)
// interval and how long the run took.
func (p pacing) wait(planned, interval, ran time.Duration) time.Duration {
	if p == fromStart {
		return max(planned-ran, interval/4)
	}
	return planned
}

// every is the one loop shape of the bridge: run fn now, then every interval
// (with jitter, paced as pace says), each run under its own timeout; after a
// failure the next run comes sooner or later by exponential backoff, capped at
// the interval, so a recovering upstream is noticed quickly without being
// hammered. It returns when ctx ends.
func every(ctx context.Context, pace pacing, interval, timeout time.Duration, jitter float64, fn func(ctx context.Context) error) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = min(250*time.Millisecond, interval)
	bo.MaxInterval = interval
	bo.MaxElapsedTime = 0
	bo.Reset()

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		started := time.Now()
		runCtx, cancel := context.WithTimeout(ctx, timeout)
		err := fn(runCtx)
		cancel()
		next := jittered(interval, jitter)
		if err != nil && ctx.Err() == nil {
			next = bo.NextBackOff()
		} else {
			bo.Reset()
			next = pace.wait(next, interval, time.Since(started))
		}
		timer.Reset(next)
	}
}

// jittered spreads d by up to ±fraction so loops of many bridges and many
// tenants do not fall into step.
func jittered(d time.Duration, fraction float64) time.Duration {
	if fraction <= 0 || d <= 0 {
		return d
	}
	delta := (rand.Float64()*2 - 1) * fraction * float64(d)
	return d + time.Duration(delta)
}

// jitterFraction is a uniform draw in [0,1), used to spread first polls.
func jitterFraction() float64 { return rand.Float64() }
