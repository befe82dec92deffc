package app

import (
	"testing"
	"time"
)

// SetStreamCheckEvery shortens how long stream health is cached, for the
// rest of the test.
func SetStreamCheckEvery(t *testing.T, d time.Duration) {
	old := streamCheckEvery
	streamCheckEvery = d
	t.Cleanup(func() { streamCheckEvery = old })
}
