package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/devstack"
	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// Each call pops once, on its agent, when it first shows up; a second call
// alongside it pops on its own, and calls ending pop nothing.
func TestScreenPopOncePerCall(t *testing.T) {
	st := devstack.Start(t, cecsim.Config{Agents: 6})
	var out testbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, st.NATS.URL(), devstack.Tenant, &out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	within := 20 * time.Second
	testwait.For(t, within, "the subscriber listening", func() bool { return strings.Contains(out.String(), "listening on cec.evt.dev.agent.*.calls") })

	pops := func(s string) int { return strings.Count(out.String(), s) }
	first, err := st.Sim.StartCall(1003)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, within, "the first call popped", func() bool { return pops("agent 1003 call "+first+" ") == 1 })
	second, err := st.Sim.StartCall(1003)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, within, "the second call popped", func() bool { return pops("agent 1003 call "+second+" ") == 1 })
	other, err := st.Sim.StartCall(1004)
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, within, "a call on another agent popped", func() bool { return pops("agent 1004 call "+other+" ") == 1 })
	if err := st.Sim.EndCall(1003, first); err != nil {
		t.Fatal(err)
	}
	if err := st.Sim.EndCall(1004, other); err != nil {
		t.Fatal(err)
	}
	// A later call on each agent: events of one agent arrive in order, so
	// once these pop, the ends before them have been seen too (in their own
	// events, or folded into the marker's).
	var markers []string
	for _, w := range []int{1003, 1004} {
		id, err := st.Sim.StartCall(w)
		if err != nil {
			t.Fatal(err)
		}
		markers = append(markers, id)
	}
	for _, id := range markers {
		testwait.For(t, within, "the later call popped", func() bool { return pops("call "+id+" ") == 1 })
	}
	if n := pops("screen-pop:"); n != 5 || pops(first) != 1 || pops(second) != 1 || pops(other) != 1 {
		t.Fatalf("%d pops, want 5, each call once:\n%s", n, out.String())
	}
}
