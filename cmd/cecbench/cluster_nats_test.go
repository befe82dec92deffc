package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
)

// The cluster run's servers are real processes: SIGKILL of the stream
// leader hands nothing over, yet the followers elect another, acknowledged
// publishes go on, and the killed node, started again on its store, catches
// up: made leader, it serves every acknowledged message in order.
func TestNATSClusterProcessesSurviveLeaderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := t.Context()
	ns, err := startNATSNodes(ctx, t.TempDir(), natstest.ClusterSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.shutdown)
	nc, js := connectJS(t, ns.urls()...)
	const stream = "S"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{"s.>"},
		Storage: jetstream.FileStorage, Replicas: natstest.ClusterSize}); err != nil {
		t.Fatal(err)
	}
	// publish stores message i until it is acknowledged; its id makes a
	// retry of a publish that was stored but not acknowledged a no-op.
	publish := func(i int) {
		t.Helper()
		id := strconv.Itoa(i)
		var last error
		err := waitUntil(ctx, 30*time.Second, "an ack of message "+id, func() bool {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, last = js.Publish(pctx, "s."+id, []byte(id), jetstream.WithMsgID(id))
			return last == nil
		})
		if err != nil {
			t.Fatalf("%v: %v", err, last)
		}
	}
	const each = 50
	for i := 1; i <= each; i++ {
		publish(i)
	}
	leader, err := streamLeader(ctx, js, stream, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	killed := ns.index(leader)
	if killed < 0 {
		t.Fatalf("stream led by %q, not a node", leader)
	}
	ns.kill(killed)
	at := time.Now()
	if err := waitUntil(ctx, 30*time.Second, "another leader", func() bool {
		l := leaderOf(ctx, js, stream)
		return l != "" && l != leader
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGKILL of leader %s: another elected after %s", leader, time.Since(at).Round(time.Millisecond))
	for i := each + 1; i <= 2*each; i++ {
		publish(i)
	}

	if err := ns.restart(ctx, killed); err != nil {
		t.Fatal(err)
	}
	if err := waitStreamCurrent(ctx, js, stream, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// Reads go to the leader: hand the stream back to the restarted node
	// to read what it holds.
	stepdown, err := json.Marshal(map[string]any{"placement": map[string]string{"preferred": leader}})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, 30*time.Second, leader+" leading again", func() bool {
		switch l := leaderOf(ctx, js, stream); l {
		case leader:
			return true
		case "": // an election is on
		default:
			_, _ = nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, stepdown, time.Second) // checked by the next read
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.CachedInfo().State; st.Msgs != 2*each || st.LastSeq != 2*each {
		t.Fatalf("%s holds %d messages up to seq %d, want %d", leader, st.Msgs, st.LastSeq, 2*each)
	}
	for seq := uint64(1); seq <= 2*each; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if want := strconv.FormatUint(seq, 10); string(m.Data) != want {
			t.Fatalf("seq %d holds %q, want %q", seq, m.Data, want)
		}
	}
	if l := leaderOf(ctx, js, stream); l != leader {
		t.Fatalf("leader moved to %q during the read", l)
	}
}

// connectJS connects to urls, reconnecting forever, for the length of the
// test, with a JetStream context on the connection.
func connectJS(t *testing.T, urls ...string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, natstest.JetStream(t, nc)
}

// The stream info counts as caught up only with a leader and every
// follower the stream has replicas for online, current and without lag.
func TestReplicasCurrent(t *testing.T) {
	peer := func(name string, current, offline bool, lag uint64) *jetstream.PeerInfo {
		return &jetstream.PeerInfo{Name: name, Current: current, Offline: offline, Lag: lag}
	}
	info := func(replicas int, leader string, peers ...*jetstream.PeerInfo) *jetstream.StreamInfo {
		return &jetstream.StreamInfo{Config: jetstream.StreamConfig{Replicas: replicas},
			Cluster: &jetstream.ClusterInfo{Leader: leader, Replicas: peers}}
	}
	cases := []struct {
		name string
		info *jetstream.StreamInfo
		want bool
	}{
		{"one server", info(1, "n1"), true},
		{"one server, no cluster info", &jetstream.StreamInfo{Config: jetstream.StreamConfig{Replicas: 1}}, true},
		{"R3 caught up", info(3, "n1", peer("n2", true, false, 0), peer("n3", true, false, 0)), true},
		{"R3 without a leader", info(3, "", peer("n2", true, false, 0), peer("n3", true, false, 0)), false},
		{"R3, a follower offline", info(3, "n1", peer("n2", true, false, 0), peer("n3", false, true, 0)), false},
		{"R3, a follower lagging", info(3, "n1", peer("n2", true, false, 0), peer("n3", true, false, 4)), false},
		{"R3, a follower not current", info(3, "n1", peer("n2", true, false, 0), peer("n3", false, false, 0)), false},
		{"R3, a follower missing", info(3, "n1", peer("n2", true, false, 0)), false},
		{"R3 without cluster info", &jetstream.StreamInfo{Config: jetstream.StreamConfig{Replicas: 3}}, false},
	}
	for _, c := range cases {
		if got, state := replicasCurrent(c.info); got != c.want {
			t.Errorf("%s: caught up %v (%s), want %v", c.name, got, state, c.want)
		}
	}
}
