package main

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
)

// natsNodes are the NATS servers of a cluster-scenario run: one server, or
// a JetStream cluster with routes between every pair of nodes. Each is a
// process of its own (this binary as a helper), so a kill is a SIGKILL: no
// shutdown, no Raft leadership handed to a peer first, as when a server
// dies. A killed node starts again on its ports and its store.
type natsNodes struct {
	procs *procSet
	nodes []*natsProc
}

// startNATSNodes starts size servers (n1, n2, …) with stores and logs
// under dir and returns once JetStream can place a stream with a replica
// on each. Should a node exit at its start (another process took one of
// its ports in the instant between the pick and the bind), they all start
// again on other ports.
func startNATSNodes(ctx context.Context, dir string, size int) (*natsNodes, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("own executable: %w", err)
	}
	for attempt := 0; ; attempt++ {
		ns, err := tryNATSNodes(ctx, exe, filepath.Join(dir, "try"+strconv.Itoa(attempt)), size)
		if err == nil || !errors.Is(err, errNATSExited) || attempt == 2 {
			return ns, err
		}
	}
}

func tryNATSNodes(ctx context.Context, exe, dir string, size int) (*natsNodes, error) {
	ports, err := natstest.FixedPorts(2 * size) // client ports, then route ports
	if err != nil {
		return nil, err
	}
	routes := make([]string, size)
	for i := range size {
		routes[i] = "nats://127.0.0.1:" + strconv.Itoa(ports[size+i])
	}
	// A cluster name of its own, so that a route dialled to another run's
	// cluster on a reused port is refused, not merged.
	cluster := fmt.Sprintf("cecbench-%08x", mrand.Uint32())
	ns := &natsNodes{procs: &procSet{}}
	for i := range size {
		name := "n" + strconv.Itoa(i+1)
		n := &natsProc{procs: ns.procs, exe: exe, port: ports[i], name: name,
			store: filepath.Join(dir, name), logPath: filepath.Join(dir, name+".log")}
		if size > 1 {
			n.cluster, n.clusterPort, n.routes = cluster, ports[size+i], routes
		}
		ns.nodes = append(ns.nodes, n)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats dir: %w", err)
	}
	for _, n := range ns.nodes {
		if err := n.start(ctx); err != nil {
			ns.shutdown()
			return nil, err
		}
	}
	if err := ns.waitPlacement(ctx, 30*time.Second); err != nil {
		ns.shutdown()
		return nil, err
	}
	return ns, nil
}

// waitPlacement waits until JetStream places a probe stream with a replica
// on every node: a meta leader is elected and knows every node as a peer,
// so the bridge's streams can be created at once.
func (ns *natsNodes) waitPlacement(ctx context.Context, within time.Duration) error {
	nc, err := nats.Connect(strings.Join(ns.urls(), ","), nats.Name("cecbench-probe"))
	if err != nil {
		return fmt.Errorf("nats probe: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats probe: %w", err)
	}
	probe := jetstream.StreamConfig{Name: "CECBENCH_PROBE", Subjects: []string{"cecbench.probe"},
		Storage: jetstream.MemoryStorage, Replicas: len(ns.nodes)}
	var last error
	err = pollUntil(ctx, within, 50*time.Millisecond, "JetStream placing an R"+strconv.Itoa(len(ns.nodes))+" stream", func() bool {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, last = js.CreateOrUpdateStream(rctx, probe)
		return last == nil
	})
	if err != nil {
		return errors.Join(err, last)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(dctx, probe.Name); err != nil {
		return fmt.Errorf("delete the probe stream: %w", err)
	}
	return nil
}

// urls are the client URLs of every node, in node order.
func (ns *natsNodes) urls() []string {
	out := make([]string, len(ns.nodes))
	for i, n := range ns.nodes {
		out[i] = n.url()
	}
	return out
}

// name is node i's server name, as the stream info and
// nats.Conn.ConnectedServerName report it.
func (ns *natsNodes) name(i int) string { return ns.nodes[i].name }

// index returns the node whose server name is name, or -1.
func (ns *natsNodes) index(name string) int {
	for i, n := range ns.nodes {
		if n.name == name {
			return i
		}
	}
	return -1
}

// kill ends node i with SIGKILL and returns once the process is gone.
func (ns *natsNodes) kill(i int) { ns.nodes[i].crash() }

// restart starts a killed node i again on its ports with its store and
// returns once it accepts connections.
func (ns *natsNodes) restart(ctx context.Context, i int) error { return ns.nodes[i].start(ctx) }

// shutdown kills every node: the run is over and its stores go.
func (ns *natsNodes) shutdown() { ns.procs.killAll() }

// leaderOf is the server name of stream's leader, "" when the stream info
// cannot be read or names none. The info comes from the leader itself, so
// the name is of a live server.
func leaderOf(ctx context.Context, js jetstream.JetStream, stream string) string {
	info, err := streamInfo(ctx, js, stream)
	if err != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}

func streamInfo(ctx context.Context, js jetstream.JetStream, stream string) (*jetstream.StreamInfo, error) {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := js.Stream(rctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream info %s: %w", stream, err)
	}
	return s.CachedInfo(), nil
}

// streamLeader waits until stream has a leader and returns its server name.
func streamLeader(ctx context.Context, js jetstream.JetStream, stream string, within time.Duration) (string, error) {
	var leader string
	err := pollUntil(ctx, within, 50*time.Millisecond, "a leader of stream "+stream, func() bool {
		leader = leaderOf(ctx, js, stream)
		return leader != ""
	})
	return leader, err
}

// waitStreamCurrent waits until stream has a leader and every replica its
// configuration asks for is online, current and without lag: after a
// restart, the node has caught up. On timeout the error says what the
// stream info said last.
func waitStreamCurrent(ctx context.Context, js jetstream.JetStream, stream string, within time.Duration) error {
	last := "no stream info"
	err := pollUntil(ctx, within, 50*time.Millisecond, "every replica of stream "+stream+" caught up", func() bool {
		info, err := streamInfo(ctx, js, stream)
		if err != nil {
			last = err.Error()
			return false
		}
		var ok bool
		ok, last = replicasCurrent(info)
		return ok
	})
	if err != nil {
		return fmt.Errorf("%w (%s)", err, last)
	}
	return nil
}

// replicasCurrent says whether info shows a leader and, beside it, as many
// followers as the stream has replicas, each online, current and without
// lag; state describes what it shows.
func replicasCurrent(info *jetstream.StreamInfo) (ok bool, state string) {
	want := max(info.Config.Replicas, 1)
	ci := info.Cluster
	if ci == nil || ci.Leader == "" {
		// A server outside any cluster leads its streams without saying so.
		return want == 1 && ci == nil, "no leader"
	}
	parts := []string{"leader " + ci.Leader}
	ok = len(ci.Replicas) == want-1
	for _, p := range ci.Replicas {
		parts = append(parts, fmt.Sprintf("%s current %v offline %v lag %d", p.Name, p.Current, p.Offline, p.Lag))
		if !p.Current || p.Offline || p.Lag != 0 {
			ok = false
		}
	}
	return ok, strings.Join(parts, "; ")
}
