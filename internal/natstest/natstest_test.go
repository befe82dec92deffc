package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/nats-io/nats.go/jetstream"
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
	for {
		st, err := js.Stream(ctx, "T")
		if err == nil {
			if st.CachedInfo().State.Msgs != 1 {
				t.Fatalf("msgs after restart = %d, want 1", st.CachedInfo().State.Msgs)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("stream not back after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
