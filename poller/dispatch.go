package poller

import (
	"context"
	"time"
)

// dispatch hands due agents to the workers in scheduler order.
func (t *Tenant) dispatch(ctx context.Context, work chan<- *agent) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		t.mu.Lock()
		a, wake := t.sched.next(now)
		if a != nil {
			a.inFlight = true
			a.due = now // remembered as the dispatch time for fixed-rate rescheduling
			t.sleepUntil = time.Time{}
		} else {
			t.sleepUntil = now.Add(time.Hour)
			if !wake.IsZero() {
				t.sleepUntil = wake
			}
		}
		t.mu.Unlock()
		if a != nil {
			select {
			case work <- a:
				continue
			case <-ctx.Done():
				return
			}
		}
		wait := time.Hour
		if !wake.IsZero() {
			wait = max(time.Until(wake), 0)
		}
		timer.Reset(wait) // since Go 1.23 Reset also discards a stale expiry
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		case <-timer.C:
		}
	}
}

// requeue puts an agent back in its queue and kicks the dispatcher if the
// agent falls due before the dispatcher would wake by itself. Callers hold
// t.mu.
func (t *Tenant) requeue(a *agent) {
	t.sched.push(a)
	if !t.sleepUntil.IsZero() && a.due.Before(t.sleepUntil) {
		t.sleepUntil = a.due
		t.wake()
	}
}

func (t *Tenant) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}
