package app

import (
	"github.com/cecbridge/cecbridge/poller"
)

// routes says which monitoring session may ask the gateway about which
// agent: the gateway answers only about agents of the monitoring agent's
// own VDN. A live lookup goes the way the tenant's poller goes, through
// the same monitors in the same order.
type routes []poller.Monitor

// sourceFor is the first monitor that covers workNo (a monitor without
// Covers covers every agent), or nil when none does.
func (r routes) sourceFor(workNo int) poller.CallSource {
	for _, m := range r {
		if m.Covers == nil || m.Covers(workNo) {
			return m.Source
		}
	}
	return nil
}
