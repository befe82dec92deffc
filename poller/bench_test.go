package poller_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// countingSink accepts every record and counts them; it stands in for the
// publisher where only the poller is measured.
type countingSink struct{ n atomic.Int64 }

func (s *countingSink) Emit(context.Context, schemas.Record) error { s.n.Add(1); return nil }

// Load, Latest and Prime make it the poller's History too: an empty stream.
func (s *countingSink) Load(context.Context, string) (map[string]schemas.Stored, error) {
	return nil, nil
}

func (s *countingSink) Latest(context.Context, string) (*schemas.Stored, error) { return nil, nil }

func (s *countingSink) Prime(string, uint64) {}

func benchSim(b *testing.B, agents int) *cecsim.Sim {
	b.Helper()
	sim, err := cecsim.New(cecsim.Config{Agents: agents, LongPollHold: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })
	return sim
}

// startBenchPoller runs a poller whose agents are all due all the time.
func startBenchPoller(b *testing.B, sim *cecsim.Sim, interval time.Duration, sink *countingSink) (stop func()) {
	b.Helper()
	client, err := cec.New(cec.Config{FabricURL: sim.URL(), GatewayURL: sim.URL(), AppKey: "app-key", AppSecret: "app-secret"})
	if err != nil {
		b.Fatal(err)
	}
	sess := client.NewSession(cec.SessionConfig{AgentID: 1001, Password: "agent-pass"})
	tn, err := poller.New(poller.Config{
		Tenant: "bench", Directory: poller.FabricDirectory{Client: client},
		Monitors: []poller.Monitor{{Source: sess}}, Sink: sink, History: sink,
		CallsInterval: interval, IdleInterval: interval,
		RosterInterval: time.Hour, PhonesInterval: time.Hour, HeartbeatInterval: time.Hour,
		Concurrency: 64,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = sess.Run(ctx) })
	wg.Go(func() { _ = tn.Run(ctx) })
	return func() { cancel(); wg.Wait() }
}

// BenchmarkPollRate compares the poller's call-ID polling rate with a bare
// HTTP client hitting the same simulator endpoint with the same
// concurrency, in one run.
func BenchmarkPollRate(b *testing.B) {
	const agents = 10000
	sim := benchSim(b, agents)
	window := 3 * time.Second

	b.Run("bare", func(b *testing.B) {
		// A bare client: sign in, then hammer allcallinfoEx round robin.
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		hc := &http.Client{Transport: tr}
		req, _ := http.NewRequest(http.MethodPut, sim.URL()+"/agentgateway/resource/onlineagent/1002", strings.NewReader(`{"password":"agent-pass","phonenum":"","status":3}`))
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		guid := resp.Header.Get("Set-GUID")
		resp.Body.Close()
		var n atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(window)
		b.ResetTimer()
		for w := range 64 {
			wg.Go(func() {
				for i := w; time.Now().Before(deadline); i += 64 {
					r, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/agentgateway/resource/calldata/1002/allcallinfoEx/%d", sim.URL(), 1001+i%agents), nil)
					r.Header.Set("Guid", guid)
					resp, err := hc.Do(r)
					if err != nil {
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					n.Add(1)
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(n.Load())/window.Seconds(), "polls/s")
	})

	b.Run("poller", func(b *testing.B) {
		stop := startBenchPoller(b, sim, time.Millisecond, &countingSink{})
		defer stop()
		// Warm-up: the first pass signs in and emits a snapshot per agent.
		for prev := int64(-1); ; {
			time.Sleep(time.Second)
			cur := sim.Counters()["allcallinfoEx"]
			if prev >= 0 && cur-prev >= agents {
				break
			}
			prev = cur
		}
		b.ResetTimer()
		c0 := sim.Counters()["allcallinfoEx"]
		time.Sleep(window)
		b.ReportMetric(float64(sim.Counters()["allcallinfoEx"]-c0)/window.Seconds(), "polls/s")
	})
}

// BenchmarkHeapPerAgent reports the poller's heap per tracked agent after a
// first complete pass over 10,000 agents.
func BenchmarkHeapPerAgent(b *testing.B) {
	const agents = 10000
	sim := benchSim(b, agents)
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		sink := &countingSink{}
		stop := startBenchPoller(b, sim, time.Second, sink)
		// roster (agents) + phones (agents) + one calls snapshot per agent
		for sink.n.Load() < 3*agents {
			time.Sleep(50 * time.Millisecond)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/agents, "heap-B/agent")
		stop()
	}
}
