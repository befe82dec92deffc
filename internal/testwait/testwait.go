package testwait

import (
	"testing"
	"time"
)

// Deadline is how long Until waits: far longer than any condition of the
// test suite takes on a loaded two-core machine, so that only a condition
// that will never hold reaches it.
const Deadline = 30 * time.Second

// interval is how often a condition is checked.
const interval = 5 * time.Millisecond

// For polls cond every few milliseconds until it holds, failing the test
// with what if it does not hold within the deadline.
func For(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Poll(within, cond) {
		tb.Fatalf("timed out after %s waiting for %s", within, what)
	}
}

// Until is For with the suite's Deadline.
func Until(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	For(tb, Deadline, what, cond)
}

// Poll polls cond every few milliseconds until it holds or within has
// passed, and says whether it held: for a caller that fails the test
// itself, saying more than For can (the last state it saw).
func Poll(within time.Duration, cond func() bool) bool { return PollEvery(within, interval, cond) }

// PollEvery is Poll checking every every, for a condition that costs a
// request each time it is checked.
func PollEvery(within, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
	return true
}
