package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/internal/finalstate"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/schemas"
)

// ClusterRun is one run of the bridge for --scenario cluster.
type ClusterRun struct {
	Nodes    int     `json:"nodes"`
	Replicas int     `json:"replicas"`
	Seconds  float64 `json:"seconds"`
	// History is what the audit rules found in everything the run stored.
	History HistoryCheck `json:"history"`
	// Lost counts entities whose final state in the stream differs from
	// the simulator's world once the workload stopped and the bridge had
	// time to see it (Converged is how long that took).
	Lost       int      `json:"lost"`
	LostSample []string `json:"lost_sample,omitempty"`
	Converged  float64  `json:"converged_seconds"`
	Score      Score    `json:"detection"`
	Faults     []string `json:"faults,omitempty"`
	// KillGaps is, per server killed, the time from its SIGKILL to the
	// next event stored; LongestGap the longest pause between stored events in
	// the whole run.
	KillGaps   []float64 `json:"kill_gaps_seconds,omitempty"`
	LongestGap float64   `json:"longest_gap_seconds"`
	// LeaderGaps is, per server killed, the time from its SIGKILL until
	// the events stream's info named a leader: the part of the pause the
	// cluster takes (about 0 when the server did not lead the stream, -1
	// when no leader showed within 30 s).
	LeaderGaps []float64 `json:"leader_gaps_seconds,omitempty"`
}

// ClusterResult compares the bridge on one NATS server (R1 streams) with
// the bridge on a three-node cluster (R3 streams) whose events-stream
// leader, then the bridge's own server, is killed mid-run, under the same
// seeded workload.
type ClusterResult struct {
	Started time.Time  `json:"started"`
	Options Options    `json:"options"`
	Machine Machine    `json:"machine"`
	Single  ClusterRun `json:"single_node"`
	Cluster ClusterRun `json:"cluster"`
	Targets []Target   `json:"targets"`
	Notes   []string   `json:"notes"`
	WallSec float64    `json:"wall_seconds"`
}

// runCluster runs the single-node and the cluster run one after the other.
func runCluster(ctx context.Context, o Options, progress io.Writer, log *slog.Logger) (*ClusterResult, error) {
	res := &ClusterResult{Started: time.Now(), Options: o}
	progress = &lockedWriter{w: progress} // the fault notes come from another goroutine
	host, _ := os.Hostname()
	res.Machine = Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, Host: host}
	var err error
	if res.Single, err = clusterRun(ctx, o, 1, progress, log); err != nil {
		return nil, fmt.Errorf("single node: %w", err)
	}
	if res.Cluster, err = clusterRun(ctx, o, natstest.ClusterSize, progress, log); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	for _, run := range []struct {
		name string
		r    ClusterRun
	}{{"cluster", res.Cluster}, {"single node", res.Single}} {
		h := run.r.History
		for _, c := range []struct {
			what string
			n    int
		}{
			{"lost (final state != simulator)", run.r.Lost}, {"duplicates", h.Duplicates}, {"forks", h.Forks},
			{"holes", h.Holes}, {"broken prev_id links", h.BrokenLinks}, {"false events", run.r.Score.False},
		} {
			scope := "target"
			if run.name != "cluster" {
				scope = "info"
			}
			res.Targets = append(res.Targets, Target{Name: run.name + ": " + c.what, Scope: scope, Want: "= 0", Got: float64(c.n), Met: c.n == 0})
		}
	}
	res.WallSec = time.Since(res.Started).Seconds()
	res.Notes = append(res.Notes,
		"both runs use the same seeded workload; the cluster run kills the CEC_EVENTS leader at 30 % of the phase (back at 50 %), then the server the bridge is connected to at 60 % (back at 80 %)",
		"every server is a nats-server process, and a kill is SIGKILL of it: no shutdown and no Raft leadership handover, so the followers of what it led elect a new leader only after their election timeout (4-9 s); what it had written to the kernel stays in the page cache, as it would not in a machine crash",
		"lost: the workload stops at the end of the phase and the bridge gets up to 30 s to report the world as it is; what still differs then is counted",
	)
	return res, nil
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// clusterRun runs the bridge for the phase on nodes servers with streams
// of as many replicas, killing servers mid-run when there are several.
func clusterRun(ctx context.Context, o Options, nodes int, progress io.Writer, log *slog.Logger) (ClusterRun, error) {
	run := ClusterRun{Nodes: nodes, Replicas: nodes}
	dir, err := os.MkdirTemp("", "cecbench-cluster-")
	if err != nil {
		return run, fmt.Errorf("store dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }() // a temporary store; nothing to do if it stays
	ns, err := startNATSNodes(ctx, dir, nodes)
	if err != nil {
		return run, err
	}
	defer ns.shutdown()
	sim, err := startSim(ctx, o, log)
	if err != nil {
		return run, err
	}
	defer func() { _ = sim.Close() }() // the run is over; its figures are taken
	agents := sim.Agents()
	signedIn := map[int]bool{}
	for _, wn := range agents {
		if a, ok := sim.Agent(wn); ok && a.SignedIn {
			signedIn[wn] = true
		}
	}
	truthStart := uint64(len(sim.Truth(0)))

	cfg := bridgeConfig(o, sim.URL(), ns.nodes[0].url())
	cfg.NATS.URLs = ns.urls()
	cfg.Streams.Replicas, cfg.Lease.Replicas = nodes, nodes
	bnc, onc, ojs, err := connect(cfg.NATS, log)
	if err != nil {
		return run, err
	}
	defer bnc.Close()
	defer onc.Close()

	fmt.Fprintf(progress, "%d node(s), R%d streams: %d agents, calls every %s (idle %s), %s\n",
		nodes, nodes, o.Agents, o.Interval, o.Idle, o.Duration)
	start := time.Now()
	bctx, stopBridge := context.WithCancel(ctx)
	defer stopBridge()
	bridgeDone := make(chan error, 1)
	go func() { bridgeDone <- app.Serve(bctx, cfg, bnc, log) }()
	var elog eventLog
	var stored storedLog
	fctx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	followDone := make(chan error, 1)
	go func() {
		followDone <- follow(fctx, ojs, cfg.Streams.Events, benchTenant, func(m jetstream.Msg) {
			elog.add(m)
			stored.add(m)
		}, jetstream.PullExpiry(2*time.Second)) // a dead server's consumer is replaced within seconds
	}()

	var kills []serverKill
	var faultMu sync.Mutex
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		if nodes == 1 {
			return
		}
		killAt := killServers(bctx, o, ns, ojs, bnc, cfg, start, func(s string) {
			faultMu.Lock()
			run.Faults = append(run.Faults, fmt.Sprintf("%5.1fs %s", time.Since(start).Seconds(), s))
			faultMu.Unlock()
			fmt.Fprintf(progress, "\nfault: %s\n", s)
		})
		faultMu.Lock()
		kills = killAt
		faultMu.Unlock()
	}()

	end := start.Add(o.Duration)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for now := time.Now(); now.Before(end); {
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case err := <-bridgeDone:
			return run, fmt.Errorf("bridge stopped early: %w", err)
		case now = <-tick.C:
			fmt.Fprintf(progress, "%s[%d node(s) %4.0fs/%.0fs] events %8d   ", lineStart(progress),
				nodes, now.Sub(start).Seconds(), o.Duration.Seconds(), elog.count())
		}
	}
	fmt.Fprintln(progress)
	<-faultsDone

	// The world stops changing; the bridge must end up reporting it as is.
	sim.StopWorkload()
	stopped := time.Now()
	want := finalstate.OfSim(sim)
	var diff []string
	for {
		// The stream's last message per subject, read afresh: how far the
		// live reader has got is not the bridge's business.
		last, err := lastPerSubject(ctx, ojs, cfg.Streams.Events, schemas.TenantEvents(benchTenant))
		if err == nil {
			got, err := finalstate.OfHistory(benchTenant, last)
			if err != nil {
				return run, err
			}
			diff = finalstate.Diff(want, got)
		}
		if err == nil && len(diff) == 0 || time.Since(stopped) > 30*time.Second || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	run.Converged = time.Since(stopped).Seconds()
	run.Lost = len(diff)
	run.LostSample = diff[:min(len(diff), 10)]

	stopBridge()
	if err := <-bridgeDone; err != nil {
		log.Warn("bridge stopped with an error", "err", err)
	}
	// The reader must have everything before the history is checked; its
	// consumer may still be coming back from a killed server.
	if err := stored.waitFor(ctx, ojs, cfg.Streams.Events, 30*time.Second); err != nil {
		return run, err
	}
	stopFollow()
	if err := <-followDone; err != nil {
		return run, err
	}
	run.Seconds = time.Since(start).Seconds()

	msgs, times := stored.snapshot()
	run.History = checkHistory(msgs)
	events, _, _ := elog.snapshot()
	run.Score = score(scoreInput{
		Truth: sim.Truth(truthStart), Events: events, SignedIn: signedIn,
		WindowStart: start, WindowEnd: end.Add(-o.Tail),
		CallsInterval: o.Interval, IdleInterval: o.Idle, ActiveWindow: o.ActiveWindow,
		RosterInterval: o.Roster, PhonesInterval: o.Phones,
	})
	for i := 1; i < len(times); i++ {
		run.LongestGap = max(run.LongestGap, times[i].Sub(times[i-1]).Seconds())
	}
	for _, k := range kills {
		run.LeaderGaps = append(run.LeaderGaps, k.leaderAfter.Seconds())
		for _, t := range times {
			if t.After(k.at) {
				run.KillGaps = append(run.KillGaps, t.Sub(k.at).Seconds())
				break
			}
		}
	}
	return run, nil
}

// serverKill is one SIGKILL of the cluster run.
type serverKill struct {
	at time.Time // the process is gone
	// leaderAfter is the time from at until the events stream's info named
	// a leader; negative when none did within 30 s.
	leaderAfter time.Duration
}

// killServers kills the events stream's leader with SIGKILL at 30 % of the
// phase and starts it again at 50 %, then kills the server the bridge is
// connected to at 60 % and starts it again at 80 %. It reads the leader
// and the replicas' state from the stream info on js, and returns the
// kills once each has a leader of the events stream after it.
func killServers(ctx context.Context, o Options, ns *natsNodes, js jetstream.JetStream, bnc *nats.Conn, cfg configs.Bridge, start time.Time, note func(string)) []serverKill {
	at := func(frac float64) bool { return atFraction(ctx, start, o.Duration, frac) }
	// caughtUp waits (bounded) until every replica has caught up, so that
	// the next kill leaves a quorum that holds everything.
	caughtUp := func() {
		deadline := time.Now().Add(20 * time.Second)
		for _, s := range []string{cfg.Streams.Events, cfg.Streams.State, "KV_" + cfg.Lease.Bucket} {
			if err := waitStreamCurrent(ctx, js, s, time.Until(deadline)); err != nil {
				note(fmt.Sprintf("%s not caught up: %v", s, err))
			}
		}
	}
	var kills []*serverKill
	var watches sync.WaitGroup
	kill := func(i int, why string) {
		ns.kill(i)
		k := &serverKill{at: time.Now(), leaderAfter: -1}
		kills = append(kills, k)
		note(fmt.Sprintf("SIGKILL to %s (%s)", ns.name(i), why))
		// The part of the pause the cluster takes (the bridge can store
		// nothing while the events stream has no leader), timed beside the
		// schedule, which goes on.
		watches.Go(func() {
			l, err := streamLeader(ctx, js, cfg.Streams.Events, 30*time.Second)
			if err != nil {
				note(fmt.Sprintf("no leader of %s after the SIGKILL to %s: %v", cfg.Streams.Events, ns.name(i), err))
				return
			}
			k.leaderAfter = time.Since(k.at)
			note(fmt.Sprintf("%s led by %s %.2f s after the SIGKILL to %s", cfg.Streams.Events, l, k.leaderAfter.Seconds(), ns.name(i)))
		})
	}
	restart := func(i int) {
		if err := ns.restart(ctx, i); err != nil {
			note(fmt.Sprintf("restart of %s failed: %v", ns.name(i), err))
			return
		}
		caughtUp()
		note(fmt.Sprintf("%s back and caught up", ns.name(i)))
	}
	func() {
		if !at(0.3) {
			return
		}
		name, err := streamLeader(ctx, js, cfg.Streams.Events, 10*time.Second)
		if err != nil {
			note("no leader of " + cfg.Streams.Events + ": " + err.Error())
			return
		}
		leader := ns.index(name)
		if leader < 0 {
			note(cfg.Streams.Events + " is led by an unknown server " + name)
			return
		}
		kill(leader, cfg.Streams.Events+" leader")
		if !at(0.5) {
			return
		}
		restart(leader)
		if !at(0.6) {
			return
		}
		connected := ns.index(bnc.ConnectedServerName())
		if connected < 0 {
			note("the bridge is not connected to a node")
			return
		}
		why := "the bridge's server"
		if leaderOf(ctx, js, cfg.Streams.Events) == ns.name(connected) {
			why += ", leading " + cfg.Streams.Events
		}
		kill(connected, why)
		if !at(0.8) {
			return
		}
		restart(connected)
	}()
	watches.Wait()
	out := make([]serverKill, len(kills))
	for i, k := range kills {
		out[i] = *k
	}
	return out
}
