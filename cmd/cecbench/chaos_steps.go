package main

import (
	"context"
	"fmt"
	"time"
)

// ChaosStep is one thing the drill did, for the record.
type ChaosStep struct {
	At     float64 `json:"at_s"` // seconds since the drill's window began
	Kind   string  `json:"kind"`
	Slot   string  `json:"instance,omitempty"`
	PID    int     `json:"pid,omitempty"`
	Detail string  `json:"detail,omitempty"`
}

// BridgeProcess is one cecbridge process the drill ran.
type BridgeProcess struct {
	Slot    string    `json:"instance"`
	Gen     int       `json:"generation"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Log     string    `json:"log"`
}

type restartRecord struct {
	slot              string
	killed, restarted time.Time
	inOutage          bool
}

type pauseRecord struct {
	slot                      string
	pid                       int
	stopped, takeover, resume time.Time
}

type fillRecord struct {
	slot       string
	from, to   time.Time
	torn       bool
	skipped    string
	limitBytes int64
}

// SpoolCapture is what the holder killed during the outage left in its
// spool: events it saw that can no longer reach the stream.
type SpoolCapture struct {
	Slot    string `json:"instance,omitempty"`
	Records int    `json:"records"`
	Torn    int    `json:"torn_records"`
	Events  int    `json:"entity_events"`
	Error   string `json:"error,omitempty"`
}

func (d *drill) since() float64 { return time.Since(d.start).Seconds() }

func (d *drill) step(kind string, s *slot, pid int, format string, args ...any) {
	st := ChaosStep{At: d.since(), Kind: kind, PID: pid, Detail: fmt.Sprintf(format, args...)}
	if s != nil {
		st.Slot = s.name
	}
	d.steps = append(d.steps, st)
	who := ""
	if s != nil {
		who = fmt.Sprintf(" %s (pid %d)", s.name, pid)
	}
	fmt.Fprintf(d.progress, "[chaos %6.1fs] %s%s %s\n", st.At, kind, who, st.Detail)
}

func (d *drill) note(format string, args ...any) {
	d.notes = append(d.notes, fmt.Sprintf(format, args...))
}

// wait waits for d, or until ctx ends. A fault's random moment, never a
// synchronisation.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitUntil polls cond until it holds, ctx ends or the deadline passes.
func waitUntil(ctx context.Context, within time.Duration, what string, cond func() bool) error {
	return pollUntil(ctx, within, 25*time.Millisecond, what, cond)
}

func pollUntil(ctx context.Context, within, every time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, within)
		}
		if err := wait(ctx, every); err != nil {
			return err
		}
	}
	return nil
}

// between draws a duration uniformly from [lo, hi].
func (d *drill) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(d.rng.Int64N(int64(hi-lo)))
}
