package poller

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// every is the one loop shape of the bridge: run fn now, then every interval
// (with jitter), each run under its own timeout; after a failure the next run
// comes sooner or later by exponential backoff, capped at the interval, so a
// recovering upstream is noticed quickly without being hammered. It returns
// when ctx ends.
func every(ctx context.Context, interval, timeout time.Duration, jitter float64, fn func(ctx context.Context) error) {
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
		runCtx, cancel := context.WithTimeout(ctx, timeout)
		err := fn(runCtx)
		cancel()
		next := jittered(interval, jitter)
		if err != nil && ctx.Err() == nil {
			next = bo.NextBackOff()
		} else {
			bo.Reset()
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
