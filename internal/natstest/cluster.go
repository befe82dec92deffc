package natstest

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ClusterSize is the number of nodes RunCluster starts: the smallest
// cluster in which an R3 stream survives the loss of any one node.
const ClusterSize = 3

// Cluster is a JetStream cluster of embedded servers on 127.0.0.1: every
// node routes to every other, has its own store directory and a unique
// server name (n1, n2, …). Client ports are random; route ports are fixed
// up front (a node must know its peers' route URLs before it starts) and
// kept across restarts, as are the client ports and the stores.
type Cluster struct {
	name  string
	nodes []*node
}

// RunCluster starts a ClusterSize-node cluster with stores under
// t.TempDir(), waits for a JetStream meta leader, and shuts it down at the
// end of the test.
func RunCluster(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	c, err := StartCluster(t.TempDir(), ClusterSize, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	return c
}

// StartCluster starts size servers with stores under dir and returns once
// JetStream has a meta leader that every node follows. Route ports are
// picked free just before the start; should another process take one in
// that instant, the cluster is started again on other ports.
func StartCluster(dir string, size int, opts ...Option) (*Cluster, error) {
	if size < 1 {
		return nil, fmt.Errorf("natstest: cluster of %d nodes", size)
	}
	var err error
	for attempt := range 4 {
		var c *Cluster
		c, err = startCluster(filepath.Join(dir, "try"+strconv.Itoa(attempt)), size, opts)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errNotReady) {
			return nil, err
		}
	}
	return nil, err
}

func startCluster(dir string, size int, opts []Option) (*Cluster, error) {
	ports, err := FixedPorts(size)
	if err != nil {
		return nil, err
	}
	c := &Cluster{name: fmt.Sprintf("natstest-%08x", mrand.Uint32())}
	routes := make([]string, size)
	for i, p := range ports {
		routes[i] = "nats://127.0.0.1:" + strconv.Itoa(p)
	}
	for i := range size {
		o := server.Options{
			ServerName: "n" + strconv.Itoa(i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, "n"+strconv.Itoa(i+1)),
			NoLog:      true,
			NoSigs:     true,
			// A cluster name of its own, so that a route dialled to another
			// test's cluster on a reused port is refused, not merged.
			Cluster: server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		for _, f := range opts {
			f(&o)
		}
		if err := os.MkdirAll(o.StoreDir, 0o700); err != nil {
			c.Shutdown()
			return nil, fmt.Errorf("natstest: store dir: %w", err)
		}
		n := &node{opts: o}
		if err := n.start(5 * time.Second); err != nil {
			c.Shutdown()
			return nil, err
		}
		n.pinPorts()
		c.nodes = append(c.nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.waitMetaLeader(ctx); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// FixedPorts picks n distinct free ports on 127.0.0.1 below the kernel's
// ephemeral range, where no outgoing connection borrows them between the
// pick and a server's bind, nor while a stopped server is down: ports for
// servers that must come back where their peers and clients expect them.
func FixedPorts(n int) ([]int, error) {
	lo, hi := 10000, ephemeralLow()-1
	if hi-lo < 1000 {
		lo, hi = 1024, 65535
	}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("natstest: no free route ports")
		}
		p := lo + mrand.IntN(hi-lo+1)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		held = append(held, l)
		ports = append(ports, p)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux;
// the IANA range start elsewhere).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 49152
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 49152
	}
	p, err := strconv.Atoi(f[0])
	if err != nil {
		return 49152
	}
	return p
}

// waitMetaLeader waits until one live node leads the JetStream meta group,
// every live node is current with it, and the leader counts every live
// node as a peer it can place replicas on.
func (c *Cluster) waitMetaLeader(ctx context.Context) error {
	return c.poll(ctx, "a JetStream meta leader with every node as a peer", func() bool {
		var leader *server.Server
		live := 0
		for _, n := range c.nodes {
			if n.srv == nil {
				continue
			}
			live++
			if !n.srv.JetStreamIsCurrent() {
				return false
			}
			if n.srv.JetStreamIsLeader() {
				leader = n.srv
			}
		}
		return leader != nil && len(leader.JetStreamClusterPeers()) == live
	})
}

func (c *Cluster) poll(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("natstest: waiting for %s: %w", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Size is the number of nodes, running or not.
func (c *Cluster) Size() int { return len(c.nodes) }

// URLs are the client URLs of every node, in node order.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = "nats://127.0.0.1:" + strconv.Itoa(n.opts.Port)
	}
	return out
}

// Server returns node i's server, nil while it is killed.
func (c *Cluster) Server(i int) *server.Server { return c.nodes[i].srv }

// Name is node i's server name, as nats.Conn.ConnectedServerName reports it.
func (c *Cluster) Name(i int) string { return c.nodes[i].opts.ServerName }

// Index returns the node whose server name is name, or -1.
func (c *Cluster) Index(name string) int {
	for i, n := range c.nodes {
		if n.opts.ServerName == name {
			return i
		}
	}
	return -1
}

// Kill shuts node i down and waits for it; its store stays for Restart.
func (c *Cluster) Kill(i int) { c.nodes[i].shutdown() }

// Restart starts a killed node i again on its ports with its store.
func (c *Cluster) Restart(i int) error {
	n := c.nodes[i]
	if n.srv != nil {
		return nil
	}
	return n.start(10 * time.Second)
}

// Shutdown stops every node. Calling it twice is fine.
func (c *Cluster) Shutdown() {
	for _, n := range c.nodes {
		n.shutdown()
	}
}

// StreamLeader waits until a running node leads stream (of the global
// account) and returns its index.
func (c *Cluster) StreamLeader(ctx context.Context, stream string) (int, error) {
	leader := -1
	err := c.poll(ctx, "a leader of stream "+stream, func() bool {
		for i, n := range c.nodes {
			if n.srv != nil && n.srv.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				leader = i
				return true
			}
		}
		return false
	})
	return leader, err
}

// WaitStreamCurrent waits until stream has a leader and every running node
// that holds a replica of it holds as much as the leader: after a restart,
// the node has caught up. On timeout the error says what each replica held
// last.
func (c *Cluster) WaitStreamCurrent(ctx context.Context, stream string) error {
	var last []string
	err := c.poll(ctx, "every replica of stream "+stream+" caught up", func() bool {
		last = last[:0]
		leader := -1
		for i, n := range c.nodes {
			if n.srv != nil && n.srv.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				leader = i
			}
		}
		if leader < 0 {
			last = append(last, "no leader")
			return false
		}
		want, ok := localStream(c.nodes[leader].srv, stream)
		if !ok {
			return false
		}
		peers := map[string]bool{c.Name(leader): true}
		if want.Cluster != nil {
			for _, p := range want.Cluster.Replicas {
				peers[p.Name] = true
			}
		}
		caught := true
		for i, n := range c.nodes {
			if n.srv == nil || !peers[c.Name(i)] {
				continue
			}
			got, ok := localStream(n.srv, stream)
			current := n.srv.JetStreamIsStreamCurrent(server.DEFAULT_GLOBAL_ACCOUNT, stream)
			last = append(last, fmt.Sprintf("%s: last seq %d, %d msgs, current %v", c.Name(i), got.State.LastSeq, got.State.Msgs, current))
			if !ok || got.State.LastSeq != want.State.LastSeq || got.State.Msgs != want.State.Msgs || !current {
				caught = false
			}
		}
		return caught
	})
	if err != nil {
		return fmt.Errorf("%w (%s)", err, strings.Join(last, "; "))
	}
	return nil
}

// localStream is srv's own replica of stream (global account).
func localStream(srv *server.Server, stream string) (server.StreamDetail, bool) {
	jsz, err := srv.Jsz(&server.JSzOptions{Account: server.DEFAULT_GLOBAL_ACCOUNT, Accounts: true, Streams: true})
	if err != nil {
		return server.StreamDetail{}, false
	}
	for _, acc := range jsz.AccountDetails {
		for _, sd := range acc.Streams {
			if sd.Name == stream {
				return sd, true
			}
		}
	}
	return server.StreamDetail{}, false
}

// Connect opens a client connection that knows every node's URL and
// reconnects forever with a short wait, and closes it at the end of the
// test. Extra options are applied after those defaults.
func (c *Cluster) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	return connect(t, strings.Join(c.URLs(), ","), opts)
}
