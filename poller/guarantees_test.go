package poller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

func phoneOps(t *testing.T, r *recorder, num string) []schemas.Op {
	t.Helper()
	var ops []schemas.Op
	for _, ev := range r.on(schemas.PhoneStateSubject(tenantName, num)) {
		var ch schemas.Change[schemas.PhoneState]
		if err := json.Unmarshal(ev.Data, &ch); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, ch.Op)
	}
	return ops
}

// Offset paging is no snapshot. While a phone walk is between its two pages,
// a phone on the page already read goes away and one is added at the end:
// the total is unchanged, nothing is listed twice, and the phone that was
// first on page two slides onto page one, unseen. The walk completes without
// it; it must not be reported deleted (and then created again).
func TestPhoneThatSlidesPastAPageIsNotDeleted(t *testing.T) {
	sim := cecsimtest.Start(t, cecsim.Config{Agents: 150, LongPollHold: 100 * time.Millisecond})
	phones := sim.Phones()
	removedPhone, slidPhone := phones[5].PhoneNum, phones[100].PhoneNum
	// The simulator numbers an agent's softphone 8888 and its work number.
	removedAgent, err := strconv.Atoi(strings.TrimPrefix(removedPhone, "8888"))
	if err != nil {
		t.Fatalf("phone %s: %v", removedPhone, err)
	}

	// The vendor, seen through a proxy that changes the world once, right
	// before it answers the second page of a walk.
	var once sync.Once
	armed := make(chan struct{})
	slid := make(chan struct{})
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/queryPhone") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var page struct {
				Offset json.Number `json:"offset"`
			}
			_ = json.Unmarshal(body, &page)
			select {
			case <-armed:
				if page.Offset.String() == "100" {
					once.Do(func() {
						if err := sim.RemoveAgent(removedAgent); err != nil {
							t.Error(err)
						}
						if err := sim.AddAgent(5000); err != nil {
							t.Error(err)
						}
						close(slid)
					})
				}
			default:
			}
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	f := startPollerWith(t, sim, nil, pollerOpts{url: proxy.URL})
	testwait.Until(t, "phone snapshots", func() bool { return len(phoneOps(t, f.sink, slidPhone)) == 1 })
	close(armed)
	<-slid
	// The removal is confirmed by a second walk, then published; so is the
	// new phone.
	testwait.Until(t, "the removed phone's deletion", func() bool {
		ops := phoneOps(t, f.sink, removedPhone)
		return len(ops) == 2 && ops[1] == schemas.OpDelete
	})
	testwait.Until(t, "the new phone", func() bool { return len(f.sink.on(schemas.PhoneStateSubject(tenantName, "88885000"))) == 1 })
	if ops := phoneOps(t, f.sink, slidPhone); len(ops) != 1 {
		t.Fatalf("the phone that slid past the page boundary has events %v, want only its snapshot", ops)
	}
	validateAll(t, f.sink.records())
}

// emptyRosterOnce answers one well-formed but empty roster, as a vendor
// glitch might, and the real one otherwise.
type emptyRosterOnce struct {
	poller.Directory
	mu   sync.Mutex
	when chan struct{} // closed: the next roster is empty
	done chan struct{} // closed once the empty roster was served
	used bool
}

func (d *emptyRosterOnce) Roster(ctx context.Context) (poller.Roster, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.when:
		if !d.used {
			d.used = true
			close(d.done)
			return poller.Roster{SIPServerIP: "10.0.0.1", SIPServerPort: 5060}, nil
		}
	default:
	}
	return d.Directory.Roster(ctx)
}

// One empty (but valid) roster does not delete every agent: a removal
// needs a second complete roster without the agent.
func TestOneEmptyRosterDeletesNobody(t *testing.T) {
	sim := cecsimtest.Start(t, cecsim.Config{Agents: 5, LongPollHold: 100 * time.Millisecond})
	glitch := &emptyRosterOnce{when: make(chan struct{}), done: make(chan struct{})}
	f := startPollerWith(t, sim, nil, pollerOpts{directory: func(d poller.Directory) poller.Directory {
		glitch.Directory = d
		return glitch
	}})
	testwait.Until(t, "softphone snapshots", func() bool {
		for _, w := range sim.Agents() {
			if len(f.sink.on(schemas.AgentSoftphoneSubject(tenantName, w))) != 1 {
				return false
			}
		}
		return true
	})
	close(glitch.when)
	<-glitch.done
	// Three more complete rosters.
	after := f.sim.Counters()["queryAgentInfo"]
	testwait.Until(t, "three more rosters", func() bool { return f.sim.Counters()["queryAgentInfo"] >= after+3 })
	for _, w := range sim.Agents() {
		if n := len(f.sink.on(schemas.AgentSoftphoneSubject(tenantName, w))); n != 1 {
			t.Errorf("agent %d: %d softphone events after one empty roster, want only its snapshot", w, n)
		}
	}
}

// A walk cut short by its own deadline is a failed walk: counted, reported
// on bridge.visibility as lost, and no longer vouched for by the heartbeat
// (it used to pass as "the term is over", silently).
func TestWalkThatOutlastsItsDeadlineIsReported(t *testing.T) {
	// 250 phones are three pages; at 900 ms a page the walk needs 2.7 s,
	// past its 2 s deadline, while no single request times out.
	f := startFixture(t, 250, nil)
	testwait.Until(t, "phone snapshots", func() bool {
		return len(f.sink.on(schemas.PhoneStateSubject(tenantName, f.sim.Phones()[0].PhoneNum))) == 1
	})
	f.sim.Inject(cecsim.Fault{Endpoint: "queryPhone", Kind: cecsim.FaultLatency, Latency: 900 * time.Millisecond})
	testwait.Until(t, "the phones scope reported lost", func() bool {
		for _, ev := range f.sink.on(schemas.BridgeSubject(tenantName, schemas.BridgeVisibility)) {
			var v schemas.Visibility
			if err := json.Unmarshal(ev.Data, &v); err == nil && v.Scope == schemas.ScopePhones && v.State == schemas.VisibilityLost {
				return true
			}
		}
		return false
	})
	if st := f.tenant.Stats(); st.PollsFailed == 0 || st.PhonesVisible {
		t.Fatalf("stats %+v: want a failed walk and phones not visible", st)
	}
	testwait.Until(t, "a heartbeat saying the phones are not visible", func() bool {
		hbs := f.sink.on(schemas.BridgeSubject(tenantName, schemas.BridgeHeartbeat))
		if len(hbs) == 0 {
			return false
		}
		var hb schemas.Heartbeat
		return json.Unmarshal(hbs[len(hbs)-1].Data, &hb) == nil && !hb.PhonesVisible
	})
}

// When another writer's event turns out to be the last on a subject, the
// poller re-reads the subject, primes the writer with it and continues
// from that state: its next event follows the other writer's.
func TestConflictedSubjectContinuesFromTheStream(t *testing.T) {
	f := startFixture(t, 3, nil)
	subject := schemas.AgentCallsSubject(tenantName, 1002)
	testwait.Until(t, "a snapshot of agent 1002", func() bool { return len(f.callsOf(1002)) == 1 })
	// Another writer publishes seq 2 and 3: agent 1002 "in call X".
	f.sink.store(schematest.CallsRecord(tenantName, 1002, 2, "X"))
	f.sink.store(schematest.CallsRecord(tenantName, 1002, 3, "X"))
	f.tenant.Conflicted(subject)
	testwait.Until(t, "the writer primed at seq 3", func() bool {
		f.sink.mu.Lock()
		defer f.sink.mu.Unlock()
		return f.sink.primed[subject] == 3
	})
	// The truth is still "no call": the poller corrects the other
	// writer's state with seq 4.
	testwait.Until(t, "the correction", func() bool { return len(f.callsOf(1002)) == 2 })
	ch := calls(t, f.sink.on(subject)[1])
	if ch.Seq != 4 || ch.Before == nil || len(ch.Before.CallIDs) != 1 || ch.Before.CallIDs[0] != "X" || len(ch.After.CallIDs) != 0 {
		t.Fatalf("event after the conflict = %+v, want seq 4 from [X] to []", ch)
	}
}

// An agent whose last event is the end of a call was active a moment ago:
// a new term (after a restart) goes on polling it at the active interval,
// not the idle one.
func TestAgentWhoseCallJustEndedStaysActiveAcrossATerm(t *testing.T) {
	sim := cecsimtest.Start(t, cecsim.Config{Agents: 3, LongPollHold: 100 * time.Millisecond})
	// The stream's last event of agent 1002: its call ended a second ago.
	subject := schemas.AgentCallsSubject(tenantName, 1002)
	after := time.Now().Add(-2 * time.Second)
	ended := schematest.NewEvent(schemas.TypeAgentCalls, subject, 2, schemas.Change[schemas.AgentCalls]{
		Op: schemas.OpUpdate, Key: schemas.Key{Tenant: tenantName, WorkNo: 1002}, Seq: 2,
		PrevID: schemas.EventID(subject, 1),
		Before: &schemas.AgentCalls{CallIDs: []string{"1700000000-1"}}, After: &schemas.AgentCalls{CallIDs: []string{}},
		Detected: schemas.Detected{AfterPoll: &after, ByPoll: after.Add(time.Second)},
	})
	g := startPollerWith(t, sim, []schemas.Record{ended}, pollerOpts{idle: time.Hour})
	testwait.Until(t, "the first roster", func() bool { return g.tenant.Stats().AgentsTracked == 3 })
	id, err := sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call, seen at the active interval", func() bool {
		got := g.callsOf(1002)
		return len(got) > 0 && slices.Equal(got[len(got)-1], []string{id})
	})
}
