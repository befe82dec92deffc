package cecsimtest

import (
	"context"
	"testing"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// Start starts a simulator of cfg and closes it at the end of the test.
func Start(tb testing.TB, cfg cecsim.Config) *cecsim.Sim {
	tb.Helper()
	sim, err := cecsim.New(cfg)
	if err != nil {
		tb.Fatalf("cecsimtest: %v", err)
	}
	if err := sim.Start(context.Background()); err != nil {
		tb.Fatalf("cecsimtest: %v", err)
	}
	tb.Cleanup(func() { _ = sim.Close() })
	return sim
}
