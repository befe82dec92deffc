package poller

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/schemas"
)

// recountLocked is Stats with its per-entity figures counted from scratch,
// walking every agent and phone as Stats did before it kept counts: the
// reference the kept counts are held against, and the baseline of
// BenchmarkStats. It counts the visible agents by their own flag, not by
// visibility's count. Callers hold t.mu.
func (t *Tenant) recountLocked() Stats {
	st := t.statsLocked()
	st.AgentsTracked, st.AgentsVisible, st.SweptAgents, st.PhonesTracked = 0, 0, 0, 0
	for _, a := range t.agents {
		if !a.inRoster {
			continue
		}
		st.AgentsTracked++
		if a.visible {
			st.AgentsVisible++
		}
		if a.bySweep {
			st.SweptAgents++
		}
	}
	for _, p := range t.phones {
		if p.state.present {
			st.PhonesTracked++
		}
	}
	return st
}

// statsAndRecount returns Stats and recountLocked from one hold of the
// lock, so that they describe the same moment.
func (t *Tenant) statsAndRecount() (kept, walked Stats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.statsLocked(), t.recountLocked()
}

// benchUpstream is a Directory of n agents, each with its own phone, and
// a Sink and History that take everything and hold nothing: the tenant's
// state is built by its own roster, phone and sweep code, without a
// network, and nothing runs in the background while Stats is measured.
type benchUpstream struct{ n int }

func (u benchUpstream) Roster(context.Context) (Roster, error) {
	r := Roster{SIPServerIP: "10.0.0.1", SIPServerPort: 5060, Agents: make([]RosterAgent, u.n)}
	for i := range r.Agents {
		w := 1001 + i
		r.Agents[i] = RosterAgent{WorkNo: w, SIPAccount: "8888" + strconv.Itoa(w), AccountCode: "acct" + strconv.Itoa(w)}
	}
	return r, nil
}

func (u benchUpstream) Phones(context.Context) ([]Phone, error) {
	out := make([]Phone, u.n)
	for i := range out {
		out[i] = Phone{PhoneNum: "8888" + strconv.Itoa(1001+i), ID: int64(i)}
	}
	return out, nil
}

func (benchUpstream) Emit(context.Context, schemas.Record) error { return nil }

func (benchUpstream) Load(context.Context, string) (map[string]schemas.Stored, error) {
	return nil, nil
}

func (benchUpstream) Latest(context.Context, string) (*schemas.Stored, error) { return nil, nil }

func (benchUpstream) Prime(string, uint64) {}

func (benchUpstream) AllCallInfo(context.Context, int) ([]string, error) { return nil, nil }

func (benchUpstream) Ready() bool { return true }

// BenchmarkStats measures one Stats call on a tenant of 60,000 agents and
// phones, half of them reported on by the sweep and a tenth not visible:
// "kept" is Stats as it is, "recount" the walk it used to make (its
// baseline, in the same run).
func BenchmarkStats(b *testing.B) {
	const agents = 60000
	up := benchUpstream{n: agents}
	t, err := New(Config{Tenant: "bench", Directory: up, Monitors: []Monitor{{Source: up}}, Sink: up, History: up})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := t.pollRoster(ctx); err != nil {
		b.Fatal(err)
	}
	if err := t.pollPhones(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	ans := &cec.CallsAnswer{Observation: cec.Observation{Timing: cec.Timing{Sent: now, Received: now}}}
	for i := range agents / 2 {
		ans.Agents = append(ans.Agents, cec.AgentCalls{WorkNo: 1001 + i, Calls: []cec.Call{}})
	}
	t.mu.Lock()
	t.applyCallsAnswer(ans, now)
	for i := 0; i < agents; i += 10 {
		t.vis.lost(t.agents[1001+i], now, "timeout")
	}
	t.mu.Unlock()
	if st := t.Stats(); st.AgentsTracked != agents || st.SweptAgents != agents/2 || st.PhonesTracked != agents {
		b.Fatalf("bench tenant stats %+v", st)
	}

	b.Run("kept", func(b *testing.B) {
		for b.Loop() {
			t.Stats()
		}
	})
	b.Run("recount", func(b *testing.B) {
		for b.Loop() {
			t.mu.Lock()
			t.recountLocked()
			t.mu.Unlock()
		}
	})
}
