package poller

import (
	"testing"
	"time"
)

// While active agents are overdue, idle agents get their share and no more.
func TestSchedulerFavoursActiveAgents(t *testing.T) {
	s := scheduler{idleShare: 0.25}
	now := time.Now()
	for i := range 100 {
		s.push(&agent{workNo: 1000 + i, heapIdx: -1, active: true, due: now.Add(-time.Second)})
		s.push(&agent{workNo: 5000 + i, heapIdx: -1, active: false, due: now.Add(-time.Minute)})
	}
	idle := 0
	for range 40 {
		a, _ := s.next(now)
		if !a.active {
			idle++
		}
	}
	if idle != 10 {
		t.Fatalf("idle dispatches = %d of 40, want 10 (share 0.25)", idle)
	}
	// Nothing due: next reports the earliest due time.
	s2 := scheduler{idleShare: 0.1}
	s2.push(&agent{heapIdx: -1, active: true, due: now.Add(3 * time.Second)})
	s2.push(&agent{heapIdx: -1, active: false, due: now.Add(time.Second)})
	if a, wake := s2.next(now); a != nil || !wake.Equal(now.Add(time.Second)) {
		t.Fatalf("next = %v, %v; want nil and the idle agent's due time", a, wake)
	}
}

func TestSchedulerRemove(t *testing.T) {
	s := scheduler{idleShare: 0.1}
	now := time.Now()
	agents := make([]*agent, 10)
	for i := range agents {
		agents[i] = &agent{workNo: i, heapIdx: -1, active: i%2 == 0, due: now.Add(time.Duration(i) * time.Millisecond)}
		s.push(agents[i])
	}
	s.remove(agents[4])
	s.remove(agents[5])
	if s.len() != 8 || agents[4].heapIdx != -1 {
		t.Fatalf("len %d after two removals", s.len())
	}
	for s.len() > 0 {
		a, _ := s.next(now.Add(time.Hour))
		if a == agents[4] || a == agents[5] {
			t.Fatal("removed agent dispatched")
		}
	}
}

func TestSweepPeriodDoesNotStretchWithTheSweep(t *testing.T) {
	second := time.Second
	cases := []struct {
		name      string
		pace      pacing
		ran, want time.Duration
	}{
		{"walks wait a whole interval after a short run", afterEnd, 200 * time.Millisecond, second},
		{"walks wait a whole interval after a long run", afterEnd, 3 * second, second},
		{"a sweep starts an interval after the last one started", fromStart, 230 * time.Millisecond, 770 * time.Millisecond},
		{"a sweep longer than its interval leaves a quarter interval", fromStart, 3 * second, 250 * time.Millisecond},
		{"a sweep that took nearly the interval leaves a quarter interval", fromStart, 900 * time.Millisecond, 250 * time.Millisecond},
	}
	for _, c := range cases {
		if got := c.pace.wait(second, second, c.ran); got != c.want {
			t.Errorf("%s: waits %v, want %v", c.name, got, c.want)
		}
	}
}
