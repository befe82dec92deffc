// Package testwait is the one way tests in this module wait: poll a
// condition until it holds or a deadline passes, never sleep for a guessed
// time. It is imported by tests only.
package testwait

import (
	"testing"
	"time"
)

// For polls cond every few milliseconds until it holds, failing the test
// with what if it does not hold within the deadline.
func For(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
