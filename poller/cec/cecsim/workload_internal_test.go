package cecsim

import (
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
)

// normalized drops what legitimately differs between runs: wall-clock time
// and the unix prefix of call IDs.
func normalized(cs []Change) []Change {
	out := make([]Change, len(cs))
	for i, c := range cs {
		c.At = time.Time{}
		if _, n, ok := strings.Cut(c.CallID, "-"); ok {
			c.CallID = n
		}
		out[i] = c
	}
	return out
}

func runScripted(t *testing.T, seed int64) []Change {
	t.Helper()
	s, err := New(Config{Seed: seed, Agents: 500, Workload: Workload{Enabled: true, RosterChangesPerHour: 600, PhoneFlapsPerHour: 600}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Virtual time advances in uneven steps, as a jittery ticker would.
	for i, at := 0, time.Duration(0); at < 10*time.Minute; i++ {
		at += time.Duration(1+i%7) * 13 * time.Millisecond * 100
		s.step(at)
		if i == 50 {
			if err := s.SetSoftphone(1001, "123", "acct-x"); err != nil {
				t.Fatal(err)
			}
		}
	}
	return normalized(s.Truth(0))
}

func TestWorkloadDeterministicForSeed(t *testing.T) {
	a, b := runScripted(t, 7), runScripted(t, 7)
	if len(a) < 100 {
		t.Fatalf("only %d changes in ten virtual minutes", len(a))
	}
	if len(a) != len(b) {
		t.Fatalf("same seed gave %d and %d changes", len(a), len(b))
	}
	kinds := map[string]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("change %d differs: %+v vs %+v", i, a[i], b[i])
		}
		kinds[a[i].Kind]++
	}
	for _, k := range []string{KindCallAdded, KindCallRemoved, KindSoftphone, KindPhoneStatus, KindSignedIn, KindSignedOut, KindAgentAdded, KindAgentRemoved} {
		if kinds[k] == 0 {
			t.Errorf("no %s change in the workload: %v", k, kinds)
		}
	}
	c := runScripted(t, 8)
	same := len(a) == len(c)
	for i := 0; same && i < len(a); i++ {
		same = a[i] == c[i]
	}
	if same {
		t.Error("different seeds gave the same truth")
	}
}

// TestWorkloadInvariants checks the model against its own rules: calls only
// for signed-in agents, at most MaxCallsPerAgent, and every truth entry
// consistent with the world's final state.
func TestWorkloadInvariants(t *testing.T) {
	s, err := New(Config{Seed: 3, Agents: 300, Workload: Workload{Enabled: true, CallsPerAgentHour: 120, MaxCallsPerAgent: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for at := time.Duration(0); at < 20*time.Minute; at += 500 * time.Millisecond {
		s.step(at)
	}
	calls := map[int]map[string]bool{}
	for _, c := range s.Truth(0) {
		switch c.Kind {
		case KindCallAdded:
			if calls[c.WorkNo] == nil {
				calls[c.WorkNo] = map[string]bool{}
			}
			calls[c.WorkNo][c.CallID] = true
		case KindCallRemoved:
			if !calls[c.WorkNo][c.CallID] {
				t.Fatalf("call %s removed without being added", c.CallID)
			}
			delete(calls[c.WorkNo], c.CallID)
		}
	}
	for _, wn := range s.Agents() {
		info, _ := s.Agent(wn)
		if len(info.Calls) > 2 {
			t.Errorf("agent %d holds %d calls", wn, len(info.Calls))
		}
		if len(info.Calls) > 0 && !info.SignedIn {
			t.Errorf("signed-out agent %d holds calls", wn)
		}
		if len(info.Calls) != len(calls[wn]) {
			t.Errorf("agent %d: truth replay gives %d calls, world %d", wn, len(calls[wn]), len(info.Calls))
		}
	}
}

// BenchmarkWorkload60000 measures the CPU one virtual second of the default
// workload costs at 60,000 agents (ns/op = ns of CPU per simulated second).
func BenchmarkWorkload60000(b *testing.B) {
	s, err := New(Config{Agents: 60000, Workload: Workload{Enabled: true}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	at := time.Duration(0)
	for b.Loop() {
		at += time.Second
		s.step(at)
	}
	b.ReportMetric(float64(len(s.Truth(0)))/at.Seconds(), "changes/vsec")
}

// After StopWorkload returns, the workload changes nothing more, while the
// world still answers and takes scripted changes.
func TestStopWorkloadFreezesTheWorld(t *testing.T) {
	s, err := New(Config{Agents: 50, Workload: Workload{Enabled: true, CallsPerAgentHour: 36000, MeanCallDuration: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testwait.For(t, 10*time.Second, "the workload to change the world", func() bool { return len(s.Truth(0)) > 0 })
	s.StopWorkload()
	select {
	case <-s.workloadDone:
	default:
		t.Fatal("StopWorkload returned before the workload ended")
	}
	n := len(s.Truth(0))
	if _, err := s.StartCall(s.Agents()[0]); err != nil {
		t.Fatal(err)
	}
	if got := len(s.Truth(0)); got != n+1 {
		t.Fatalf("truth grew from %d to %d, want only the scripted change", n, got)
	}
	s.StopWorkload() // twice is fine
}
