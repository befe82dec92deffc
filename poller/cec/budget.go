package cec

import (
	"context"

	"golang.org/x/time/rate"
)

// Budget is a request budget (a token bucket) with two classes of request.
// Priority requests — tenant-wide walks and lookups someone is waiting for —
// take the next token; ordinary requests queue behind each other one at a
// time, so that however many call-ID polls are waiting, a priority request
// never waits behind all of them.
type Budget struct {
	lim      *rate.Limiter
	ordinary chan struct{} // a one-slot gate: at most one ordinary request holds a reservation
}

// NewBudget returns a budget of perSecond requests with bursts of up to
// burst (at least 1).
func NewBudget(perSecond float64, burst int) *Budget {
	return &Budget{lim: rate.NewLimiter(rate.Limit(perSecond), max(burst, 1)), ordinary: make(chan struct{}, 1)}
}

// Wait blocks until the request may go, or ctx ends.
func (b *Budget) Wait(ctx context.Context) error {
	if Priority(ctx) {
		return b.lim.Wait(ctx)
	}
	select {
	case b.ordinary <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-b.ordinary }()
	return b.lim.Wait(ctx)
}

type priorityKey struct{}

// WithPriority marks the requests made with ctx as priority requests for a
// [Budget].
func WithPriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, priorityKey{}, true)
}

// Priority reports whether ctx was marked with WithPriority.
func Priority(ctx context.Context) bool {
	v, _ := ctx.Value(priorityKey{}).(bool)
	return v
}
