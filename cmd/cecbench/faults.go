package main

import (
	"context"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// atFraction waits until frac of a phase of length d that began at start
// has passed; false if ctx ended first.
func atFraction(ctx context.Context, start time.Time, d time.Duration, frac float64) bool {
	return pause(ctx, time.Until(start.Add(time.Duration(frac*float64(d)))))
}

// runFaults mixes the simulator's faults (and a NATS restart) into the
// bridge phase at fixed fractions of it.
func runFaults(ctx context.Context, o Options, sim *cecsim.Sim, ns *embedded, start time.Time, note func(string)) {
	at := func(frac float64) bool { return atFraction(ctx, start, o.Duration, frac) }
	if !at(0.15) {
		return
	}
	sim.Inject(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultHTTPStatus, Status: 502, Probability: 0.02})
	sim.Inject(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultGarbled, Probability: 0.01})
	sim.Inject(cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultGarbled, Count: 1})
	sim.Inject(cecsim.Fault{Endpoint: "queryPhone", Kind: cecsim.FaultHTTPStatus, Status: 503, Count: 2})
	note("allcallinfoEx: 2% 502, 1% garbled; queryAgentInfo garbled once; queryPhone 503 twice")
	if !at(0.3) {
		return
	}
	sim.KickOut(firstWorkNo + bridgeMonitor)
	note("monitoring agent kicked out")
	if !at(0.45) {
		return
	}
	sim.RevokeTokens()
	note("API Fabric tokens revoked")
	if !at(0.6) {
		return
	}
	if ns != nil {
		if err := ns.restart(); err != nil {
			note("NATS restart failed: " + err.Error())
		} else {
			note("NATS server restarted (same port and store)")
		}
	} else {
		note("NATS restart skipped (external server)")
	}
	if !at(0.75) {
		return
	}
	sim.ClearFaults()
	note("faults cleared")
}

// pause waits for d; false if ctx ended first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
