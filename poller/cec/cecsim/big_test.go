package cecsim_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

func TestSixtyThousandAgents(t *testing.T) {
	sim, err := cecsim.New(cecsim.Config{Agents: 60000, AgentsPerVDN: 1000, Workload: cecsim.Workload{Enabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if n := len(sim.Agents()); n != 60000 {
		t.Fatalf("%d agents", n)
	}
	if n := len(sim.Phones()); n != 60000 {
		t.Fatalf("%d phones", n)
	}
	info, ok := sim.Agent(61000)
	if !ok || info.VDN != 60 || info.SIPAccount != "888861000" {
		t.Errorf("last agent %+v", info)
	}
}

// BenchmarkNew60000 reports the heap a 60,000-agent world holds.
func BenchmarkNew60000(b *testing.B) {
	var keep *cecsim.Sim
	for b.Loop() {
		s, err := cecsim.New(cecsim.Config{Agents: 60000, Workload: cecsim.Workload{Enabled: true}})
		if err != nil {
			b.Fatal(err)
		}
		keep = s
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/60000, "heapB/agent")
	runtime.KeepAlive(keep)
}

// BenchmarkAllCallInfoEx measures the simulator serving allcallinfoEx over
// real HTTP from parallel clients.
func BenchmarkAllCallInfoEx(b *testing.B) {
	sim := start(b, cecsim.Config{Agents: 1000, AuthMode: cecsim.AuthStatic})
	g, _ := login(b, sim, "1001", false)
	for wn := 1001; wn < 2000; wn += 3 {
		if _, err := sim.StartCall(wn); err != nil {
			b.Fatal(err)
		}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			url := fmt.Sprintf("%s%scalldata/1001/allcallinfoEx/%d", sim.URL(), gwBase, 1001+i%1000)
			req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
			req.Header.Set("Guid", g)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
