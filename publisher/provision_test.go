package publisher_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
)

func liveConfig(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config
}

// An operator changed the live stream (a longer retention): Provision
// reports the difference, field by field, instead of overwriting it; with
// UpdateExisting it applies the configuration.
func TestProvisionReportsDriftInsteadOfOverwriting(t *testing.T) {
	e := newEnv(t, publisher.Config{MaxAge: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	live := liveConfig(t, e.js, publisher.DefaultEventsStream)
	live.MaxAge = 3 * time.Hour
	if _, err := e.js.UpdateStream(ctx, live); err != nil {
		t.Fatal(err)
	}
	err := publisher.Provision(ctx, e.js, publisher.Config{MaxAge: time.Hour})
	if got := liveConfig(t, e.js, publisher.DefaultEventsStream).MaxAge; got != 3*time.Hour {
		t.Fatalf("Provision overwrote the operator's max_age: now %s", got)
	}
	var d *publisher.DriftError
	if !errors.Is(err, publisher.ErrDrift) || errors.Is(err, publisher.ErrPermanent) || !errors.As(err, &d) {
		t.Fatalf("Provision = %v, want a non-permanent *DriftError", err)
	}
	want := []publisher.FieldDrift{{Field: "max_age", Wanted: "1h0m0s", Live: "3h0m0s"}}
	if d.Stream != publisher.DefaultEventsStream || !slices.Equal(d.Fields, want) || d.Breaking {
		t.Fatalf("drift %+v, want %s %+v", d, publisher.DefaultEventsStream, want)
	}

	if err := publisher.Provision(ctx, e.js, publisher.Config{MaxAge: time.Hour, UpdateExisting: true}); err != nil {
		t.Fatal(err)
	}
	if got := liveConfig(t, e.js, publisher.DefaultEventsStream).MaxAge; got != time.Hour {
		t.Fatalf("UpdateExisting did not apply max_age: %s", got)
	}
	if err := publisher.Provision(ctx, e.js, publisher.Config{MaxAge: time.Hour}); err != nil {
		t.Fatalf("no drift left, yet: %v", err)
	}
}

// Streams the bridge cannot work with, and refusals that no retry fixes,
// are ErrPermanent; a drift the bridge can live with is not.
func TestProvisionTellsPermanentFromDrift(t *testing.T) {
	cases := []struct {
		name      string
		before    []jetstream.StreamConfig // created before Provision
		update    bool
		permanent bool
		fields    []string // the fields a *DriftError names, if any
	}{
		{"another stream takes the events' subjects", []jetstream.StreamConfig{
			{Name: "SOMEONE_ELSES", Subjects: []string{schemas.AllEvents}},
		}, false, true, nil},
		{"a state stream without its source", []jetstream.StreamConfig{
			{Name: publisher.DefaultStateStream, Subjects: []string{"state.>"}},
		}, false, true, []string{"sources", "subjects", "max_msgs_per_subject", "allow_direct"}},
		{"an events stream with other subjects", []jetstream.StreamConfig{
			{Name: publisher.DefaultEventsStream, Subjects: []string{"cec.evt.acme.>"}, Duplicates: 2 * time.Minute, MaxAge: publisher.DefaultMaxAge, AllowDirect: true},
		}, false, true, []string{"subjects"}},
		{"... updated when asked", []jetstream.StreamConfig{
			{Name: publisher.DefaultEventsStream, Subjects: []string{"cec.evt.acme.>"}, Duplicates: 2 * time.Minute, MaxAge: publisher.DefaultMaxAge, AllowDirect: true},
		}, true, false, nil},
		{"memory storage", []jetstream.StreamConfig{
			{Name: publisher.DefaultEventsStream, Subjects: []string{schemas.AllEvents}, Storage: jetstream.MemoryStorage, Duplicates: 2 * time.Minute, MaxAge: publisher.DefaultMaxAge, AllowDirect: true},
		}, false, false, []string{"storage"}},
		{"memory storage, update asked: JetStream refuses", []jetstream.StreamConfig{
			{Name: publisher.DefaultEventsStream, Subjects: []string{schemas.AllEvents}, Storage: jetstream.MemoryStorage, Duplicates: 2 * time.Minute, MaxAge: publisher.DefaultMaxAge, AllowDirect: true},
		}, true, true, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := natstest.RunServer(t)
			js := natstest.JetStream(t, srv.Connect(t))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			for _, sc := range c.before {
				if _, err := js.CreateStream(ctx, sc); err != nil {
					t.Fatal(err)
				}
			}
			err := publisher.Provision(ctx, js, publisher.Config{UpdateExisting: c.update})
			switch {
			case c.permanent && !errors.Is(err, publisher.ErrPermanent):
				t.Fatalf("Provision = %v, want ErrPermanent", err)
			case !c.permanent && errors.Is(err, publisher.ErrPermanent):
				t.Fatalf("Provision = %v, want no ErrPermanent", err)
			case !c.permanent && c.fields == nil && err != nil:
				t.Fatalf("Provision = %v, want nil", err)
			}
			if c.fields == nil {
				return
			}
			var d *publisher.DriftError
			if !errors.As(err, &d) || !errors.Is(err, publisher.ErrDrift) {
				t.Fatalf("Provision = %v, want a *DriftError", err)
			}
			var got []string
			for _, f := range d.Fields {
				got = append(got, f.Field)
			}
			if !slices.Equal(got, c.fields) {
				t.Fatalf("drift names %v, want %v (%v)", got, c.fields, err)
			}
		})
	}
}

// A user who may not create streams gets ErrPermanent (the server drops
// the request with an asynchronous permissions error); a server that is
// not there gets a transient error.
func TestProvisionPermissionsArePermanentOutagesAreNot(t *testing.T) {
	srv := natstest.RunServer(t, natstest.WithOptions(func(o *server.Options) {
		o.Users = []*server.User{{Username: "bridge", Password: "pw", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.STREAM.CREATE.>"}},
		}}}
	}))
	nc, err := nats.Connect(srv.URL(), nats.UserInfo("bridge", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := publisher.Provision(ctx, js, publisher.Config{}); !errors.Is(err, publisher.ErrPermanent) {
		t.Fatalf("Provision without permission = %v, want ErrPermanent", err)
	}

	down := natstest.RunServer(t)
	dnc := down.Connect(t)
	down.Shutdown()
	djs, err := jetstream.New(dnc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = publisher.Provision(ctx, djs, publisher.Config{})
	if err == nil || errors.Is(err, publisher.ErrPermanent) || errors.Is(err, publisher.ErrDrift) {
		t.Fatalf("Provision with NATS down = %v, want a transient error", err)
	}
}

// Moving to a cluster: streams created at R1 without a placement are
// reported as drift (replicas and placement, field by field) and left
// alone; with UpdateExisting they are moved to R3 on the tagged servers.
func TestProvisionMovesStreamsToTheClusterOnlyWhenAsked(t *testing.T) {
	c := natstest.RunCluster(t, natstest.WithOptions(func(o *server.Options) { o.Tags.Add("cecbridge") }))
	js := natstest.JetStream(t, c.Connect(t))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := publisher.Provision(ctx, js, publisher.Config{}); err != nil {
		t.Fatal(err)
	}
	clustered := publisher.Config{Replicas: 3, Placement: &jetstream.Placement{Tags: []string{"cecbridge"}}}

	err := publisher.Provision(ctx, js, clustered)
	var d *publisher.DriftError
	if !errors.Is(err, publisher.ErrDrift) || errors.Is(err, publisher.ErrPermanent) || !errors.As(err, &d) {
		t.Fatalf("Provision = %v, want a non-permanent *DriftError", err)
	}
	var fields []string
	for _, f := range d.Fields {
		fields = append(fields, f.Field)
	}
	if !slices.Equal(fields, []string{"num_replicas", "placement"}) {
		t.Fatalf("drift fields %v (%v), want num_replicas and placement", fields, err)
	}
	for _, name := range []string{publisher.DefaultEventsStream, publisher.DefaultStateStream} {
		if got := liveConfig(t, js, name); got.Replicas != 1 {
			t.Fatalf("%s moved without UpdateExisting: replicas %d", name, got.Replicas)
		}
	}

	clustered.UpdateExisting = true
	if err := publisher.Provision(ctx, js, clustered); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{publisher.DefaultEventsStream, publisher.DefaultStateStream} {
		got := liveConfig(t, js, name)
		if got.Replicas != 3 || got.Placement == nil || !slices.Equal(got.Placement.Tags, []string{"cecbridge"}) {
			t.Fatalf("%s after UpdateExisting: replicas %d placement %+v, want 3 on tag cecbridge", name, got.Replicas, got.Placement)
		}
	}
	clustered.UpdateExisting = false
	if err := publisher.Provision(ctx, js, clustered); err != nil {
		t.Fatalf("no drift left, yet: %v", err)
	}
}
