package app_test

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
)

// termsOf lists the lease terms that wrote the tenant's events (the term
// qualifies every message ID).
func termsOf(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	s, err := js.Stream(t.Context(), schemas.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	seen := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			continue
		}
		id := m.Header.Get(jetstream.MsgIDHeader)
		seen[id[strings.LastIndexByte(id, '.')+1:]] = true
	}
	var out []string
	for term := range seen {
		out = append(out, term)
	}
	slices.Sort(out)
	return out
}

// A NATS outage well past the lease TTL does not stop polling: a call that
// starts and ends while NATS is away is seen, buffered and published once
// NATS is back, by the same term (the holder reclaims its lease, nobody
// having acted meanwhile). It used to step down two thirds of a TTL into
// the outage and miss the call.
func TestCallDuringANATSOutageLongerThanTheLeaseIsReported(t *testing.T) {
	e := newEnv(t, 6)
	e.cfg.Lease.TTL = 2 * time.Second
	e.start(t)
	e.events = readStream(t, e.js)
	e.waitSnapshots(t)
	before := termsOf(t, e.js)

	e.srv.Shutdown()
	outageEnds := time.After(3 * e.cfg.Lease.TTL)
	// The call starts and ends inside the outage; it lasts much longer
	// than the poll intervals (50 ms active, 200 ms idle).
	polls := e.sim.Counters()["allcallinfoEx"]
	id, err := e.sim.StartCall(1003)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "polls while NATS is away", func() bool { return e.sim.Counters()["allcallinfoEx"] > polls+60 })
	polls = e.sim.Counters()["allcallinfoEx"]
	if err := e.sim.EndCall(1003, id); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "polls after the call ended", func() bool { return e.sim.Counters()["allcallinfoEx"] > polls+60 })
	<-outageEnds
	e.srv.Start()

	testwait.Until(t, "the call, start and end, published after the outage", func() bool {
		got := e.events.calls(t, 1003)
		return len(got) == 3 && slices.Equal(got[1], []string{id}) && len(got[2]) == 0
	})
	e.events.checkHistory(t)
	if after := termsOf(t, e.js); !slices.Equal(after, before) {
		t.Fatalf("terms before the outage %v, after %v: want the same single term", before, after)
	}
}

// The process answers /healthz from the first moment, even with NATS not
// there yet; /readyz says NATS is missing; once NATS comes the streams are
// laid out, the lease is won and events flow.
func TestHealthAnswersBeforeNATSIsThere(t *testing.T) {
	e := newOpsEnv(t, 3)
	e.cfg.Lookup.Disabled = true
	e.srv.Shutdown()
	rb := runBridge(t, e.cfg, e.srv.ConnectLater(t), slog.New(slog.DiscardHandler))
	base := rb.httpBase(t)
	if code, _ := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz answered %d before NATS", code)
	}
	r := waitReadyz(t, base, "503 naming nats", func(code int, r readyz) bool {
		return code == http.StatusServiceUnavailable && r.NotReady["nats"] != ""
	})
	if len(r.NotReady) != 1 {
		t.Fatalf("/readyz before NATS: %+v", r.NotReady)
	}
	e.srv.Start()
	waitReadyz(t, base, "ready once NATS is up", func(code int, _ readyz) bool { return code == http.StatusOK })
	js := natstest.JetStream(t, e.srv.Connect(t))
	testwait.Until(t, "events from the tenant", func() bool {
		s, err := js.Stream(t.Context(), schemas.EventsStream)
		return err == nil && s.CachedInfo().State.Msgs > 0
	})
}
