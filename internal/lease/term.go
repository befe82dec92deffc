package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Term is one uninterrupted tenure of a lease. Its context ends when the
// holder must stop (another holder took the key, or the elector is
// stopping); its validity says until when the holder may act on the key's
// behalf, measured on this process's monotonic clock from the last renewal
// the server confirmed. A lost key revokes the validity at once; a clean
// stop leaves it until the holder has returned.
//
// The two differ on purpose: while NATS is unreachable the term goes on
// (the holder keeps polling and buffering) but its validity lapses, so
// nothing is published until a renewal confirms that no one else held the
// lease in the meantime.
type Term struct {
	key string
	id  string
	ctx context.Context

	mu      sync.Mutex
	until   time.Time
	changed chan struct{}
	recheck func(context.Context) error
}

func newTerm(ctx context.Context, key string) *Term {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &Term{key: key, id: hex.EncodeToString(b[:]), ctx: ctx, changed: make(chan struct{})}
}

// Key is the lease key the term holds.
func (t *Term) Key() string { return t.key }

// ID names the term: random, different for every term, even of the same
// process. Writers qualify their message IDs with it.
func (t *Term) ID() string { return t.id }

// Context ends when the term is over.
func (t *Term) Context() context.Context { return t.ctx }

// ValidUntil is the instant (monotonic) after which the holder must not act
// until the next confirmed renewal. It is zero before the first one.
func (t *Term) ValidUntil() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.until
}

// Valid reports whether the holder may act now. It outlasts the context
// on a clean stop: a holder that is told to stop may still publish what it
// has until it returns (or the validity runs out), then the lease is let go.
func (t *Term) Valid() bool { return time.Now().Before(t.ValidUntil()) }

// Changed is closed at the next change of ValidUntil (and when the term
// ends); callers waiting for validity select on it and ask again.
func (t *Term) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// OnReacquire sets the check the elector runs when it had to take the key
// anew during the term (it expired while NATS was away and nobody else
// took it): the holder must make sure nobody acted in its place in the
// meantime. An error ends the term. Without a check, the term ends.
func (t *Term) OnReacquire(check func(context.Context) error) {
	t.mu.Lock()
	t.recheck = check
	t.mu.Unlock()
}

func (t *Term) reacquireCheck() func(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.recheck
}

// extend records a confirmed renewal.
func (t *Term) extend(until time.Time) {
	t.mu.Lock()
	if until.After(t.until) {
		t.until = until
	}
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

// revoke ends the validity at once.
func (t *Term) revoke() {
	t.mu.Lock()
	t.until = time.Time{}
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}
