package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
)

func TestRestartKeepsPortAndStore(t *testing.T) {
	s := natstest.RunServer(t)
	url := s.URL()
	nc := s.Connect(t)
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	if s.URL() != url {
		t.Fatalf("url changed: %s -> %s", url, s.URL())
	}
	// The client reconnects on its own; the stream and its message survive.
	var st jetstream.Stream
	// Each attempt has its own deadline: one that outlived a slow
	// reconnect would fail every later attempt.
	testwait.Until(t, "the stream back after the restart", func() bool {
		actx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		var err error
		st, err = js.Stream(actx, "T")
		return err == nil
	})
	if st.CachedInfo().State.Msgs != 1 {
		t.Fatalf("msgs after restart = %d, want 1", st.CachedInfo().State.Msgs)
	}
}

// A three-node cluster keeps an R3 stream writable when its leader is
// killed, and the killed node comes back on its ports and store and
// catches up.
func TestClusterSurvivesItsStreamLeader(t *testing.T) {
	c := natstest.RunCluster(t)
	if c.Size() != natstest.ClusterSize {
		t.Fatalf("size %d", c.Size())
	}
	nc := c.Connect(t)
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}
	var err error
	testwait.For(t, 20*time.Second, "the R3 stream created", func() bool {
		_, err = js.CreateStream(ctx, cfg)
		return err == nil
	})
	if _, err := js.Publish(ctx, "r3.a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	leader, err := c.StreamLeader(ctx, "R3")
	if err != nil {
		t.Fatal(err)
	}
	c.Kill(leader)
	if c.Server(leader) != nil {
		t.Fatal("killed node still has a server")
	}
	next, err := c.StreamLeader(ctx, "R3")
	if err != nil {
		t.Fatal(err)
	}
	if next == leader {
		t.Fatalf("node %d still leads after it was killed", leader)
	}
	// Publishes go on once the new leader is in place (a publish racing
	// the election may still be refused: retry until one is stored).
	testwait.For(t, 20*time.Second, "a publish after the leader was killed", func() bool {
		_, err := js.Publish(ctx, "r3.b", []byte("2"))
		return err == nil
	})
	url := c.URLs()[leader]
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	if c.URLs()[leader] != url || c.Server(leader).ClientURL() != url {
		t.Fatalf("restarted node moved: %s -> %s", url, c.Server(leader).ClientURL())
	}
	if err := c.WaitStreamCurrent(ctx, "R3"); err != nil {
		t.Fatal(err)
	}
	// The restarted node's own replica holds both messages.
	jsz, err := c.Server(leader).Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		t.Fatal(err)
	}
	held := -1
	for _, acc := range jsz.AccountDetails {
		for _, sd := range acc.Streams {
			if sd.Name == "R3" {
				held = int(sd.State.Msgs)
			}
		}
	}
	if held != 2 {
		t.Fatalf("the restarted node's replica holds %d messages, want 2", held)
	}
	if i := c.Index(c.Name(leader)); i != leader {
		t.Fatalf("Index(Name(%d)) = %d", leader, i)
	}
}
