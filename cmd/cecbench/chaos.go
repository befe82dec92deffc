package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

const (
	chaosTenant = "chaos"
	leaseBucket = "cecbridge_leases"
	// blindTarget is the longest a restarted instance may take to poll.
	blindTarget = 2 * time.Second
)

// slot is one of the two bridge instances: its configuration, its spool,
// its own front on the simulator, and the process currently running it.
type slot struct {
	name     string
	cfgPath  string
	spoolDir string
	front    *simFront
	p        *proc
	gen      int
}

// instanceName is the name {name} stands for in --bridge-config.
func (s *slot) instanceName() string { return "cecbridge-" + s.name }

// drill is one run of the chaos drill.
type drill struct {
	o        Options
	co       ChaosOptions
	dir      string
	bin      string
	procs    *procSet
	nats     *natsProc
	sim      *cecsim.Sim
	js       jetstream.JetStream
	slots    []*slot
	rng      *rand.Rand
	progress io.Writer
	elog     *eventLog
	world    world     // the simulator's state before its workload started
	start    time.Time // the scored window's start
	lastDone time.Time // when the latest fault was over (restart, SIGCONT, NATS back)

	// What happened, for the score. The faults run one after another, on
	// one goroutine.
	steps    []ChaosStep
	bridges  []BridgeProcess
	restarts []restartRecord
	pauses   []pauseRecord
	outage   span // the NATS outage the bridge must see through
	// killOutage is the outage in which the holder is killed: whatever it
	// saw then dies with it, so it is scored apart from outage.
	killOutage span
	fill       fillRecord
	capture    SpoolCapture
	unstored   []observed
	notes      []string
}

// runChaos runs the drill: two cecbridge processes with leases against the
// simulator and a nats-server process, faults while the workload runs,
// then the history scored against the simulator's truth.
func runChaos(ctx context.Context, o Options, co ChaosOptions, progress io.Writer, log *slog.Logger) (*ChaosResult, error) {
	res := &ChaosResult{Started: time.Now(), Options: o, Chaos: co}
	host, _ := os.Hostname()
	res.Machine = Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, Host: host}
	d := &drill{o: o, co: co, procs: &procSet{}, progress: progress, elog: &eventLog{},
		rng: rand.New(rand.NewPCG(uint64(o.Seed), 0xc4a05))}
	dir := co.KeepDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "cecbench-chaos-"); err != nil {
			return nil, fmt.Errorf("chaos dir: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos dir: %w", err)
	}
	d.dir = dir
	// However the run ends: the processes first, then what they used.
	defer func() {
		d.procs.killAll()
		for _, s := range d.slots {
			s.front.close()
		}
		if d.sim != nil {
			_ = d.sim.Close()
		}
		if co.KeepDir == "" {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := d.setUp(ctx, log); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(d.nats.url(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.Name("cecbench-chaos"))
	if err != nil {
		return nil, fmt.Errorf("chaos nats: %w", err)
	}
	defer nc.Close()
	if d.js, err = jetstream.New(nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}

	// Both instances, then a steady state: polls and events flowing.
	for _, s := range d.slots {
		if err := d.startSlot(s); err != nil {
			return nil, err
		}
	}
	fctx, stopFollow := context.WithCancel(ctx)
	followDone := make(chan error, 1)
	go func() { followDone <- follow(fctx, d.js, "CEC_EVENTS", chaosTenant, d.elog.add) }()
	defer func() {
		stopFollow()
		if err := <-followDone; err != nil {
			log.Warn("reading the stream stopped with an error", "err", err)
		}
	}()
	fmt.Fprintf(progress, "chaos: 2 bridges (lease.ttl %s), %d agents; waiting for events\n", co.LeaseTTL, o.Agents)
	err = waitUntil(ctx, 90*time.Second, "events flowing", func() bool {
		return d.elog.count() > 0 && (d.slots[0].front.polledSince(time.Time{}) || d.slots[1].front.polledSince(time.Time{})) && d.bothAlive()
	})
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, d.exitReport())
	}
	d.start = time.Now()
	d.step("start", nil, 0, "events flowing; the scored window begins")

	d.lastDone = d.start
	for i, kind := range d.plan() {
		if err := d.recover(ctx); err != nil {
			return nil, err
		}
		d.reviveExited()
		var err error
		switch kind {
		case "kill":
			err = d.kill(ctx, false)
		case "pause":
			err = d.pause(ctx)
		case "outage":
			err = d.natsOutage(ctx, false)
		case "outage-kill":
			err = d.natsOutage(ctx, true)
		}
		if err != nil {
			return nil, fmt.Errorf("chaos step %d (%s): %w", i+1, kind, err)
		}
	}
	if err := d.recover(ctx); err != nil {
		return nil, err
	}
	d.reviveExited()

	stopAt, converged, err := d.finish(ctx)
	if err != nil {
		return nil, err
	}
	hist, err := readHistory(ctx, d.js, "CEC_EVENTS", chaosTenant)
	if err != nil {
		return nil, err
	}
	d.score(res, hist, stopAt, converged)
	res.WallSec = time.Since(res.Started).Seconds()
	return res, nil
}

// setUp builds the bridge, starts NATS and the simulator with a front per
// instance, and writes the instances' configurations.
func (d *drill) setUp(ctx context.Context, log *slog.Logger) error {
	d.bin = d.co.BridgeBin
	if d.bin == "" {
		fmt.Fprintln(d.progress, "chaos: building cecbridge")
		var err error
		if d.bin, err = buildBridge(ctx, d.dir); err != nil {
			return err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("chaos: own executable: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	d.nats = &natsProc{procs: d.procs, exe: exe, port: port, store: filepath.Join(d.dir, "nats"), logPath: filepath.Join(d.dir, "nats.log")}
	if err := d.nats.start(ctx); err != nil {
		return err
	}
	scfg := simConfig(d.o, log)
	scfg.LongPollHold = time.Second // a killed bridge's long poll ends soon
	d.sim, err = cecsim.New(scfg)
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	d.world = snapshotWorld(d.sim)
	if err := d.sim.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	for _, name := range []string{"a", "b"} {
		f, err := startFront(name, d.sim.Handler())
		if err != nil {
			return err
		}
		s := &slot{name: name, front: f, cfgPath: filepath.Join(d.dir, "bridge-"+name+".yaml"), spoolDir: filepath.Join(d.dir, "spool-"+name)}
		if err := d.writeConfig(s); err != nil {
			return err
		}
		d.slots = append(d.slots, s)
	}
	return nil
}

// recover waits until someone polls again after the latest fault, so that
// faults do not pile up and each one's blind time is its own, and then
// for a random gap.
func (d *drill) recover(ctx context.Context) error {
	done := d.lastDone
	err := waitUntil(ctx, 6*d.co.LeaseTTL+30*time.Second, "a poll after the previous fault", func() bool {
		return d.slots[0].front.polledSince(done) || d.slots[1].front.polledSince(done)
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		d.note("%v", err)
	}
	return wait(ctx, d.between(d.co.KillGap/2, d.co.KillGap*3/2))
}

// plan is the order of the faults: the kills, with the pause and the
// outages at seeded random places among them (never first). The kill in
// an outage gets an outage of its own: what the killed holder saw during
// it dies with it, which would leave nothing of the main outage to score.
func (d *drill) plan() []string {
	kills := d.co.Kills
	killOutage := d.co.OutageKill && d.co.KillOutage > 0 && kills > 0
	if killOutage {
		kills-- // it happens inside its outage
	}
	var p []string
	for range kills {
		p = append(p, "kill")
	}
	insert := func(kind string) {
		i := 1 + d.rng.IntN(len(p))
		if len(p) == 0 {
			i = 0
		}
		p = slices.Insert(p, min(i, len(p)), kind)
	}
	if d.co.Pause {
		insert("pause")
	}
	if d.co.Outage > 0 {
		insert("outage")
	}
	if killOutage {
		insert("outage-kill")
	}
	return p
}

func (d *drill) startSlot(s *slot) error {
	s.gen++
	logPath := filepath.Join(d.dir, fmt.Sprintf("bridge-%s-%d.log", s.name, s.gen))
	p, err := d.procs.start("bridge "+s.name, d.bin, []string{"run", "--config", s.cfgPath}, childEnviron(), logPath)
	if err != nil {
		return err
	}
	s.p = p
	d.bridges = append(d.bridges, BridgeProcess{Slot: s.name, Gen: s.gen, PID: p.pid(), Started: p.started, Log: logPath})
	return nil
}

func (d *drill) bothAlive() bool {
	for _, s := range d.slots {
		if s.p == nil || s.p.exited() {
			return false
		}
	}
	return true
}

// reviveExited restarts an instance that ended without being killed (a
// crash is a finding: it is recorded).
func (d *drill) reviveExited() {
	for _, s := range d.slots {
		if s.p != nil && s.p.exited() {
			d.step("exited", s, s.p.pid(), "ended on its own (%v); restarted", s.p.cmd.ProcessState)
			d.note("bridge %s (pid %d) ended on its own: %v (log %s)", s.name, s.p.pid(), s.p.cmd.ProcessState, d.bridges[len(d.bridges)-1].Log)
			if err := d.startSlot(s); err != nil {
				d.note("restart of %s failed: %v", s.name, err)
			}
		}
	}
}

// exitReport names the instances that ended during start-up.
func (d *drill) exitReport() string {
	var b strings.Builder
	for _, s := range d.slots {
		if s.p != nil && s.p.exited() {
			fmt.Fprintf(&b, "; bridge %s ended: %v (log %s)", s.name, s.p.cmd.ProcessState, filepath.Join(d.dir, fmt.Sprintf("bridge-%s-%d.log", s.name, s.gen)))
		}
	}
	return b.String()
}

// finish waits until the stream agrees with the simulator (or a
// deadline), then stops the instances: standby first, holder last, so the
// holder's flush is the last write. It returns when polling stopped.
func (d *drill) finish(ctx context.Context) (time.Time, bool, error) {
	tol := d.finalTolerance()
	converged := pollUntil(ctx, 4*tol+30*time.Second, 250*time.Millisecond, "the stream to agree with the simulator", func() bool {
		events, _, _ := d.elog.snapshot()
		tl := buildTimelines(d.world, d.sim.Truth(0))
		return len(finalMismatches(tl, events, time.Now(), tol)) == 0
	}) == nil
	if ctx.Err() != nil {
		return time.Time{}, false, ctx.Err()
	}
	d.step("converged", nil, 0, "stream agrees with the simulator: %v", converged)
	holder := d.holderFromLease(ctx)
	if holder == nil {
		holder = d.lastPoller(0)
	}
	for _, s := range d.slots {
		if s != holder && s.p != nil {
			s.p.stop(20 * time.Second)
		}
	}
	stopAt := time.Now()
	pid := 0
	if holder != nil {
		pid = holder.p.pid()
		holder.p.stop(20 * time.Second)
	}
	d.step("stop", holder, pid, "bridges stopped (SIGTERM; the holder last)")
	// What the holder flushed on the way out reaches the follower too.
	waitQuiet(ctx, d.elog, 500*time.Millisecond, 5*time.Second)
	return stopAt, converged, nil
}

// finalTolerance is how far back the final state may lag: two of the
// longest interval, and a second.
func (d *drill) finalTolerance() time.Duration {
	return 2*max(d.o.Interval, d.o.Idle, d.o.Roster, d.o.Phones) + time.Second
}
