package lease_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/lease"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// candidate runs Hold and records whether it currently leads.
type candidate struct {
	leading atomic.Bool
	terms   atomic.Int32
	term    atomic.Pointer[lease.Term]
	cancel  context.CancelFunc
	done    chan struct{}
}

func campaign(t *testing.T, e *lease.Elector, key string) *candidate {
	return campaignWith(t, e, key, nil)
}

// campaignWith also installs check as every term's reacquire check.
func campaignWith(t *testing.T, e *lease.Elector, key string, check func(context.Context) error) *candidate {
	ctx, cancel := context.WithCancel(context.Background())
	c := &candidate{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		_ = e.Hold(ctx, key, func(term *lease.Term) {
			if check != nil {
				term.OnReacquire(check)
			}
			c.term.Store(term)
			c.terms.Add(1)
			c.leading.Store(true)
			<-term.Context().Done()
			c.leading.Store(false)
		})
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

func newElector(t *testing.T, js jetstream.JetStream, cfg lease.Config) *lease.Elector {
	t.Helper()
	e, err := lease.New(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// One of two candidates leads; when it stops cleanly the other takes over
// at once, and the two never lead together.
func TestOneHolderAndCleanHandover(t *testing.T) {
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv.Connect(t))
	ctx := t.Context()
	ea := newElector(t, js, lease.Config{TTL: 2 * time.Second, Holder: "a"})
	eb := newElector(t, js, lease.Config{TTL: 2 * time.Second, Holder: "b"})
	a := campaign(t, ea, "tenant.acme")
	testwait.Until(t, "a to lead", a.leading.Load)
	b := campaign(t, eb, "tenant.acme")

	var mu sync.Mutex
	both := false
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			both = both || (a.leading.Load() && b.leading.Load())
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	// a keeps the lease across several renewals while b campaigns.
	kv, err := js.KeyValue(ctx, "cecbridge_leases")
	if err != nil {
		t.Fatal(err)
	}
	first, err := kv.Get(ctx, "tenant.acme")
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "a to renew three times", func() bool {
		cur, err := kv.Get(ctx, "tenant.acme")
		return err == nil && cur.Revision() >= first.Revision()+3
	})
	if b.leading.Load() || !a.leading.Load() {
		t.Fatal("the lease changed hands while its holder was renewing it")
	}
	a.cancel()
	<-a.done
	testwait.Until(t, "b to take over", b.leading.Load)
	close(stop)
	<-watched
	if both {
		t.Fatal("two holders at once")
	}
	if h, _ := eb.Holder(ctx, "tenant.acme"); h != "b" {
		t.Fatalf("holder = %q, want b", h)
	}
}

// A holder that cannot renew (its key was taken from it) steps down.
func TestHolderStepsDownWhenRenewalFails(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := srv.Connect(t)
	js := natstest.JetStream(t, nc)
	e := newElector(t, js, lease.Config{TTL: time.Second, Holder: "a"})
	a := campaign(t, e, "tenant.x")
	testwait.Until(t, "a to lead", a.leading.Load)
	kv, err := js.KeyValue(t.Context(), "cecbridge_leases")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "tenant.x", []byte("intruder")); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "a to step down", func() bool { return !a.leading.Load() })
	// Stepping down must not delete the key someone else now holds.
	if entry, err := kv.Get(t.Context(), "tenant.x"); err != nil || string(entry.Value()) != "intruder" {
		t.Fatalf("after stepping down the key is %v (err %v), want the intruder's", entry, err)
	}
	// The intruder never renews, its key expires, and a leads again.
	testwait.Until(t, "a to lead again", func() bool { return a.leading.Load() && a.terms.Load() == 2 })
}

// A holder whose work ends by itself hands the lease on at once instead of
// leaving it to expire.
func TestLeadThatReturnsReleasesTheLease(t *testing.T) {
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv.Connect(t))
	e := newElector(t, js, lease.Config{TTL: time.Minute, Campaign: 50 * time.Millisecond, Holder: "a"})
	ctx, cancel := context.WithCancel(context.Background())
	var terms atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Hold(ctx, "tenant.y", func(term *lease.Term) {
			if terms.Add(1) == 1 {
				return // the first term gives up at once (say, its stream was unreachable)
			}
			<-term.Context().Done()
		})
	}()
	defer func() { cancel(); <-done }()
	// Without the release the key would stand for the one-minute TTL and
	// the second term could not start before then.
	testwait.Until(t, "a second term", func() bool { return terms.Load() == 2 })
}

// A lease bucket made at R1 stays at R1 when the configuration asks for
// three replicas on tagged servers, until UpdateExisting says to move it;
// then it is scaled and placed, and the leases in it still work.
func TestBucketMovesToTheClusterOnlyWhenAsked(t *testing.T) {
	c := natstest.RunCluster(t, natstest.WithOptions(func(o *server.Options) { o.Tags.Add("cecbridge") }))
	js := natstest.JetStream(t, c.Connect(t))
	bucketConfig := func() jetstream.KeyValueConfig {
		t.Helper()
		kv, err := js.KeyValue(t.Context(), "cecbridge_leases")
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return st.(*jetstream.KeyValueBucketStatus).Config()
	}
	first := campaign(t, newElector(t, js, lease.Config{TTL: 2 * time.Second, Holder: "a"}), "tenant.acme")
	testwait.For(t, 15*time.Second, "the first holder", first.leading.Load)
	first.cancel()
	<-first.done

	clustered := lease.Config{TTL: 2 * time.Second, Holder: "b", Replicas: 3, Placement: &jetstream.Placement{Tags: []string{"cecbridge"}}}
	kept := campaign(t, newElector(t, js, clustered), "tenant.acme")
	testwait.For(t, 15*time.Second, "a holder on the old bucket", kept.leading.Load)
	if got := bucketConfig(); got.Replicas != 1 || got.Placement != nil {
		t.Fatalf("bucket changed without UpdateExisting: replicas %d placement %+v", got.Replicas, got.Placement)
	}
	kept.cancel()
	<-kept.done

	clustered.UpdateExisting, clustered.Holder = true, "c"
	moved := campaign(t, newElector(t, js, clustered), "tenant.acme")
	testwait.For(t, 30*time.Second, "a holder on the moved bucket", moved.leading.Load)
	if got := bucketConfig(); got.Replicas != 3 || got.Placement == nil || !slices.Equal(got.Placement.Tags, []string{"cecbridge"}) {
		t.Fatalf("bucket after UpdateExisting: replicas %d placement %+v, want 3 on tag cecbridge", got.Replicas, got.Placement)
	}
}
