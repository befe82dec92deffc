package lease_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/lease"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
)

// A NATS outage several times longer than the TTL does not end the term:
// the holder keeps its term (and goes on polling), its validity lapses
// while the renewals fail, and when NATS is back the holder reclaims the
// key, which expired meanwhile, after confirming nobody acted in its place.
func TestOutageLongerThanTheTTLKeepsTheTerm(t *testing.T) {
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv.Connect(t, nats.ReconnectBufSize(-1)))
	e := newElector(t, js, lease.Config{TTL: 2 * time.Second, Holder: "a"})
	var checks atomic.Int32
	a := campaignWith(t, e, "tenant.o", func(context.Context) error { checks.Add(1); return nil })
	testwait.Until(t, "a to lead", a.leading.Load)
	term := a.term.Load()
	if !term.Valid() {
		t.Fatal("a fresh term is not valid")
	}

	srv.Shutdown()
	testwait.Until(t, "the validity to lapse while NATS is away", func() bool { return !term.Valid() })
	// Stay away until the key has expired on the server (TTL after the
	// last renewal), well past the point where the old code stepped down.
	select {
	case <-term.Context().Done():
		t.Fatal("the term ended during the outage")
	case <-time.After(time.Until(term.ValidUntil().Add(3 * time.Second))):
	}
	srv.Start()

	testwait.Until(t, "the term to be valid again", term.Valid)
	if n := a.terms.Load(); n != 1 {
		t.Fatalf("%d terms, want the first one throughout", n)
	}
	if term.Context().Err() != nil {
		t.Fatal("the term ended")
	}
	if checks.Load() == 0 {
		t.Fatal("the key came back without the reacquire check (did it survive the restart?)")
	}
}

// When the holder finds out after an outage that someone acted in its
// place (its check fails), the term ends and nothing is reclaimed.
func TestReclaimAfterAnOutageIsRefusedWhenSomeoneActed(t *testing.T) {
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv.Connect(t, nats.ReconnectBufSize(-1)))
	e := newElector(t, js, lease.Config{TTL: time.Second, Campaign: 5 * time.Second, Holder: "a"})
	errForeign := errors.New("a foreign writer published on the tenant's subjects")
	a := campaignWith(t, e, "tenant.f", func(context.Context) error { return errForeign })
	testwait.Until(t, "a to lead", a.leading.Load)
	term := a.term.Load()
	srv.Shutdown()
	testwait.Until(t, "the validity to lapse", func() bool { return !term.Valid() })
	deadline := term.ValidUntil().Add(2 * time.Second)
	select {
	case <-term.Context().Done():
		t.Fatal("the term ended during the outage")
	case <-time.After(time.Until(deadline)):
	}
	srv.Start()
	testwait.Until(t, "the term to end", func() bool { return term.Context().Err() != nil })
	if term.Valid() {
		t.Fatal("an ended term is still valid")
	}
}

// A restarted instance with a stable name resumes the lease its previous
// run left behind at once, with a new term, instead of waiting for it to
// expire (every crash used to cost a whole TTL without polling).
func TestRestartedInstanceResumesItsOwnLeaseAtOnce(t *testing.T) {
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv.Connect(t))
	first := newElector(t, js, lease.Config{TTL: 6 * time.Second, Holder: "host-1"})
	a := campaign(t, first, "tenant.r")
	testwait.Until(t, "the first run to lead", a.leading.Load)
	oldTerm := a.term.Load().ID()

	// The first run dies without releasing (its Hold is simply abandoned;
	// the key stays for 6 s). A second run of the same instance:
	second := newElector(t, js, lease.Config{TTL: 6 * time.Second, Holder: "host-1"})
	start := time.Now()
	b := campaign(t, second, "tenant.r")
	testwait.Until(t, "the second run to lead", b.leading.Load)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("resumed after %s, want at once", d)
	}
	if b.term.Load().ID() == oldTerm {
		t.Fatal("the resumed lease kept the old term's ID")
	}
	// The first run, still alive here, finds its key taken and steps down
	// at its next renewal (2 s): it must not take it back.
	testwait.Until(t, "the first run to step down", func() bool { return !a.leading.Load() })
	if !b.leading.Load() || b.terms.Load() != 1 {
		t.Fatal("the lease went back to the first run")
	}
}

// A standby says who holds the lease (once per holder), so a log can tell
// why an instance is not polling.
func TestStandbyLogsTheHolder(t *testing.T) {
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv.Connect(t))
	ea := newElector(t, js, lease.Config{TTL: 2 * time.Second, Holder: "a"})
	a := campaign(t, ea, "tenant.s")
	testwait.Until(t, "a to lead", a.leading.Load)
	var buf testbuf.Buffer
	eb := newElector(t, js, lease.Config{TTL: 2 * time.Second, Campaign: 100 * time.Millisecond, Holder: "b",
		Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	kv, err := js.KeyValue(t.Context(), "cecbridge_leases")
	if err != nil {
		t.Fatal(err)
	}
	first, err := kv.Get(t.Context(), "tenant.s")
	if err != nil {
		t.Fatal(err)
	}
	campaign(t, eb, "tenant.s")
	testwait.Until(t, "a to renew twice while b campaigns", func() bool {
		cur, err := kv.Get(t.Context(), "tenant.s")
		return err == nil && cur.Revision() >= first.Revision()+2
	})
	out := buf.String()
	if n := strings.Count(out, "lease held by another instance"); n != 1 || !strings.Contains(out, "holder=a") {
		t.Fatalf("standby log says %q, want the holder named once", out)
	}
}

// A bucket made with another TTL than configured is used as it is, and its
// TTL decides the term's validity (keys expire by the bucket's clock).
func TestExistingBucketTTLApplies(t *testing.T) {
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv.Connect(t))
	if _, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "cecbridge_leases", TTL: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	e := newElector(t, js, lease.Config{TTL: time.Minute, Holder: "a"})
	a := campaign(t, e, "tenant.t")
	testwait.Until(t, "a to lead", a.leading.Load)
	if left := time.Until(a.term.Load().ValidUntil()); left > 3*time.Second {
		t.Fatalf("validity %s ahead, beyond the bucket's 3 s TTL", left)
	}
	if e.TTL() != 3*time.Second {
		t.Fatalf("TTL() = %s, want the bucket's", e.TTL())
	}
}
