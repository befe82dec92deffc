package app

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/lease"
)

// The assigner keeps at most the share by weight, gives up the rest, takes
// more only under its share, and the instances agree on who keeps what.
func TestAssignerKeepsItsShareByWeight(t *testing.T) {
	weights := map[string]int{"big": 6, "t1": 1, "t2": 1, "t3": 1, "t4": 1, "t5": 1, "t6": 1}
	for _, live := range []int{1, 2, 3, 4} {
		for _, self := range []string{"a", "b", "c"} {
			a := newAssigner(testElector(t), self, weights, slog.New(slog.DiscardHandler))
			for i := range live {
				a.live = append(a.live, fmt.Sprintf("i%d", i))
			}
			close(a.ready)
			for tn := range weights {
				a.held[tn] = true // holds everything, as after being alone
			}
			share := shareOf(a.total, live)
			kept, keptN := 0, 0
			for tn := range weights {
				if !a.shouldYield(tn) {
					kept += weights[tn]
					keptN++
				}
			}
			if kept > share && keptN > 1 {
				t.Errorf("live %d, self %s: keeps weight %d over a share of %d", live, self, kept, share)
			}
			if keptN == 0 {
				t.Errorf("live %d, self %s: gives up everything", live, self)
			}
		}
	}
}

func TestAssignerTakesOnlyUnderItsShare(t *testing.T) {
	a := newAssigner(testElector(t), "a", map[string]int{"x": 1, "y": 1, "z": 1, "w": 1}, slog.New(slog.DiscardHandler))
	a.live = []string{"a", "b"} // share 2
	if a.Take("tenant.x", 0) {
		t.Fatal("took before the live set was known")
	}
	close(a.ready)
	if !a.Take("tenant.x", 0) {
		t.Fatal("holding nothing, did not take")
	}
	if !a.Take("tenant.y", 0) {
		t.Fatal("with x counted, did not take a second under a share of two")
	}
	if a.Take("tenant.z", 0) {
		t.Fatal("took a third tenant over a share of two: the yeses were not counted")
	}
	a.Taken("tenant.y", false) // y was not won after all
	if !a.Take("tenant.z", 0) {
		t.Fatal("a lost campaign kept its room")
	}
	if !a.Take("tenant.w", time.Hour) {
		t.Fatal("did not take a tenant nobody took for long")
	}
}

// testElector is an elector that is never run: it only knows its TTL.
func testElector(t *testing.T) *lease.Elector {
	t.Helper()
	e, err := lease.New(nil, lease.Config{TTL: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
