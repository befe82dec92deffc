package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// holderFromLease maps the lease's value to a running instance: the value
// is the holder's name, today "host/pid", or a configured name.
func (d *drill) holderFromLease(ctx context.Context) *slot {
	kctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	kv, err := d.js.KeyValue(kctx, leaseBucket)
	if err != nil {
		return nil
	}
	e, err := kv.Get(kctx, "tenant."+chaosTenant)
	if err != nil {
		return nil
	}
	v := string(e.Value())
	for _, s := range d.slots {
		if s.p == nil || s.p.exited() {
			continue
		}
		if v == s.instanceName() || strings.HasSuffix(v, fmt.Sprintf("/%d", s.p.pid())) {
			return s
		}
	}
	return nil
}

// lastPoller is the running instance that asked for call IDs last, if it
// did within recent (any time, with recent 0).
func (d *drill) lastPoller(recent time.Duration) *slot {
	var best *slot
	var at int64
	for _, s := range d.slots {
		if s.p == nil || s.p.exited() {
			continue
		}
		if t := s.front.lastPoll.Load(); t > at {
			best, at = s, t
		}
	}
	if best == nil || (recent > 0 && time.Since(time.Unix(0, at)) > recent) {
		return nil
	}
	return best
}

// findHolder finds the instance holding the tenant's lease: from the lease
// bucket, else the one polling right now. During the outage the bucket
// cannot be read, and the holder is the one that polled last.
func (d *drill) findHolder(ctx context.Context, outage bool) (*slot, string, error) {
	var s *slot
	how := ""
	err := waitUntil(ctx, 6*d.co.LeaseTTL+30*time.Second, "a lease holder", func() bool {
		switch {
		case outage:
			s, how = d.lastPoller(0), "the last to poll (NATS is down)"
		default:
			if s, how = d.holderFromLease(ctx), "lease"; s == nil {
				s, how = d.lastPoller(1500*time.Millisecond), "polling"
			}
		}
		return s != nil
	})
	return s, how, err
}

// kill SIGKILLs the holder and restarts it after a random downtime.
func (d *drill) kill(ctx context.Context, inOutage bool) error {
	s, how, err := d.findHolder(ctx, inOutage)
	if err != nil {
		return err
	}
	pid := s.p.pid()
	s.p.kill()
	killed := time.Now()
	d.step("kill", s, pid, "SIGKILL (holder by %s)", how)
	if inOutage {
		d.captureSpool(s)
	}
	down := d.between(100*time.Millisecond, d.co.MaxDowntime)
	if err := wait(ctx, down); err != nil {
		return err
	}
	if err := d.startSlot(s); err != nil {
		return err
	}
	d.step("restart", s, s.p.pid(), "after %.1fs down", down.Seconds())
	d.lastDone = time.Now()
	d.restarts = append(d.restarts, restartRecord{slot: s.name, killed: killed, restarted: s.p.started, inOutage: inOutage})
	return nil
}

// captureSpool reads what a killed holder left in its spool before its
// successor starts (and, today, discards it).
func (d *drill) captureSpool(s *slot) {
	recs, torn, err := readSpool(s.spoolDir)
	c := SpoolCapture{Slot: s.name, Records: len(recs), Torn: torn}
	if err != nil {
		c.Error = err.Error()
	}
	var evs []observed
	for _, r := range recs {
		if o, ok, err := decodeEvent(r.Subject, r.Body, time.Time{}); err == nil && ok {
			evs = append(evs, o)
		}
	}
	c.Events = len(evs)
	d.capture, d.unstored = c, evs
	d.step("spool", s, s.p.pid(), "the killed holder left %d records (%d torn) in its spool", c.Records, c.Torn)
}

// pause SIGSTOPs the holder until the standby has taken over and the lease
// TTL has passed, then SIGCONTs it: from then on it must write nothing.
func (d *drill) pause(ctx context.Context) error {
	s, how, err := d.findHolder(ctx, false)
	if err != nil {
		return err
	}
	pid := s.p.pid()
	if err := s.p.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	stopped := time.Now()
	d.step("pause", s, pid, "SIGSTOP (holder by %s)", how)
	var other *slot
	for _, x := range d.slots {
		if x != s {
			other = x
		}
	}
	err = waitUntil(ctx, 3*d.co.LeaseTTL+30*time.Second, "the standby taking over", func() bool {
		return other.front.polledSince(stopped) && time.Since(stopped) > d.co.LeaseTTL+time.Second
	})
	if err != nil {
		d.note("pause: %v", err)
	}
	var takeover time.Time
	polls, _ := other.front.records()
	if i, ok := firstAtOrAfter(polls, stopped); ok {
		takeover = polls[i]
	}
	if cerr := s.p.signal(syscall.SIGCONT); cerr != nil {
		return cerr
	}
	resumed := time.Now()
	d.lastDone = resumed
	d.step("resume", s, pid, "SIGCONT after %.1fs", resumed.Sub(stopped).Seconds())
	d.pauses = append(d.pauses, pauseRecord{slot: s.name, pid: pid, stopped: stopped, takeover: takeover, resume: resumed})
	return ctx.Err()
}

// natsOutage takes the NATS server away for the outage and starts it again
// on the same port and store. The plain outage is a clean stop (an
// operator's restart); the one with a kill is a crash (SIGKILL), and inside
// it the holder's disk fills for a while, and later the holder is killed.
func (d *drill) natsOutage(ctx context.Context, withKill bool) error {
	out := d.co.Outage
	if withKill {
		out = d.co.KillOutage
		d.nats.crash()
		d.step("nats-kill", nil, 0, "NATS server killed (SIGKILL) for %s", out)
	} else {
		d.nats.stop()
		d.step("nats-stop", nil, 0, "NATS server stopped for %s", out)
	}
	from := time.Now()
	killAt := time.Duration(0)
	if withKill {
		killAt = d.between(out*6/10, out*8/10)
	}
	if withKill && d.co.DiskFull > 0 {
		fillAt := d.between(out*3/10, out*45/100)
		dur := d.co.DiskFull
		if killAt > 0 {
			dur = min(dur, killAt-fillAt-500*time.Millisecond)
		}
		if err := wait(ctx, time.Until(from.Add(fillAt))); err != nil {
			return err
		}
		if err := d.fillDisk(ctx, dur); err != nil {
			return err
		}
	}
	if killAt > 0 {
		if err := wait(ctx, time.Until(from.Add(killAt))); err != nil {
			return err
		}
		if err := d.kill(ctx, true); err != nil {
			return err
		}
	}
	if err := wait(ctx, time.Until(from.Add(out))); err != nil {
		return err
	}
	if err := d.nats.start(ctx); err != nil {
		return err
	}
	back := time.Now()
	d.lastDone = back
	if withKill {
		d.killOutage = span{From: from, To: back, Reason: "NATS outage with a kill"}
	} else {
		d.outage = span{From: from, To: back, Reason: "NATS outage"}
	}
	d.step("nats-start", nil, 0, "NATS server back on the same store after %.1fs", back.Sub(from).Seconds())
	return nil
}

// fillDisk makes the holder's spool writes fail as on a full disk: first a
// write cut short (a torn record), then every write, for dur.
func (d *drill) fillDisk(ctx context.Context, dur time.Duration) error {
	s := d.lastPoller(0)
	if s == nil {
		d.fill.skipped = "no instance has polled"
		return nil
	}
	pid := s.p.pid()
	limit := newestSegmentSize(s.spoolDir) + 100 // within the next record
	restore, err := limitFileSize(pid, uint64(limit))
	if err != nil {
		d.fill.skipped = err.Error()
		d.step("disk-full", s, pid, "skipped: %v", err)
		return nil
	}
	from := time.Now()
	d.step("disk-full", s, pid, "spool writes past %d bytes fail", limit)
	torn := false
	for time.Since(from) < dur && ctx.Err() == nil {
		if _, n, _ := readSpool(s.spoolDir); n > 0 && !torn {
			torn = true
			if _, err := limitFileSize(pid, 0); err != nil {
				d.note("disk full: %v", err)
			}
		}
		_ = wait(ctx, 20*time.Millisecond)
	}
	if err := restore(); err != nil && !s.p.exited() {
		d.note("disk full: %v", err)
	}
	to := time.Now()
	d.fill = fillRecord{slot: s.name, from: from, to: to, torn: torn, limitBytes: limit}
	detail := "no spool write was attempted while it was full"
	if torn {
		detail = "a spool write was torn, later ones failed"
	}
	d.step("disk-freed", s, pid, "%s", detail)
	return ctx.Err()
}
