package poller_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// Helpers of the poller's tests: a recording Sink and History, and a
// poller against the simulator (fixture).

// recorder is a Sink and History that keeps every accepted record in
// order, checks the per-subject sequence rules as it goes, and can be told
// to refuse. As a History it holds what a stream would: the last record of
// every subject, including those given as already stored.
type recorder struct {
	t       testing.TB
	mu      sync.Mutex
	all     []schemas.Record
	last    map[string]uint64
	stored  map[string]schemas.Record
	primed  map[string]uint64
	refuse  bool
	refused int
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{t: t, last: map[string]uint64{}, stored: map[string]schemas.Record{}, primed: map[string]uint64{}}
}

// store records rec as already in the stream (from an earlier run).
func (r *recorder) store(rec schemas.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[rec.Subject] = rec.Seq
	r.stored[rec.Subject] = rec
}

func (r *recorder) storedLocked(rec schemas.Record) schemas.Stored {
	var ev schemas.Event
	if err := json.Unmarshal(rec.Body, &ev); err != nil {
		r.t.Errorf("undecodable stored event: %v", err)
	}
	return schemas.Stored{Subject: rec.Subject, StreamSeq: rec.Seq, Event: ev, Body: rec.Body}
}

// Load implements poller.History.
func (r *recorder) Load(_ context.Context, filter string) (map[string]schemas.Stored, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prefix := strings.TrimSuffix(filter, ">")
	out := map[string]schemas.Stored{}
	for subj, rec := range r.stored {
		if strings.HasPrefix(subj, prefix) {
			out[subj] = r.storedLocked(rec)
		}
	}
	return out, nil
}

// Latest implements poller.History.
func (r *recorder) Latest(_ context.Context, subject string) (*schemas.Stored, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.stored[subject]
	if !ok {
		return nil, nil
	}
	st := r.storedLocked(rec)
	return &st, nil
}

// Prime implements poller.History.
func (r *recorder) Prime(subject string, seq uint64) {
	r.mu.Lock()
	r.primed[subject] = seq
	r.mu.Unlock()
}

var errRefused = errors.New("refused by test")

func (r *recorder) Emit(_ context.Context, rec schemas.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse {
		r.refused++
		return errRefused
	}
	if want := r.last[rec.Subject] + 1; rec.Seq != want {
		r.t.Errorf("%s: seq %d, want %d (holes or repeats)", rec.Subject, rec.Seq, want)
	}
	r.last[rec.Subject] = rec.Seq
	r.stored[rec.Subject] = rec
	r.all = append(r.all, rec)
	return nil
}

func (r *recorder) setRefuse(v bool) {
	r.mu.Lock()
	r.refuse = v
	r.mu.Unlock()
}

// on returns the decoded events recorded on subject.
func (r *recorder) on(subject string) []schemas.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []schemas.Event
	for _, rec := range r.all {
		if rec.Subject == subject {
			var ev schemas.Event
			if err := json.Unmarshal(rec.Body, &ev); err != nil {
				r.t.Fatalf("undecodable event: %v", err)
			}
			out = append(out, ev)
		}
	}
	return out
}

func (r *recorder) records() []schemas.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

func calls(t testing.TB, ev schemas.Event) schemas.Change[schemas.AgentCalls] {
	t.Helper()
	var ch schemas.Change[schemas.AgentCalls]
	if err := json.Unmarshal(ev.Data, &ch); err != nil {
		t.Fatal(err)
	}
	return ch
}

type fixture struct {
	sim     *cecsim.Sim
	client  *cec.Client
	session *cec.Session
	sink    *recorder
	tenant  *poller.Tenant
	cancel  context.CancelFunc
	done    chan struct{}
}

const tenantName = "acme"

func startFixture(t *testing.T, agents int, restore []schemas.Record) *fixture {
	t.Helper()
	sim, err := cecsim.New(cecsim.Config{
		Agents:        agents,
		LongPollHold:  100 * time.Millisecond,
		GUIDInterval:  300 * time.Millisecond,
		GUIDTimeout:   time.Second,
		NoPollTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	f := startPoller(t, sim, restore)
	t.Cleanup(cancel)
	return f
}

func startPoller(t *testing.T, sim *cecsim.Sim, restore []schemas.Record) *fixture {
	t.Helper()
	return startPollerWith(t, sim, restore, pollerOpts{})
}

// pollerOpts change how a test poller reaches the vendor.
type pollerOpts struct {
	url       string                                  // vendor base URL (default: the simulator's)
	directory func(poller.Directory) poller.Directory // wraps the directory
	// sweep turns the CMS sweep on, every 100 ms, with the simulator's
	// credentials (cmsSK overrides the secret key).
	sweep   bool
	cmsSK   string
	lag     time.Duration // poller.Config.CMSLag
	vdns    []cec.VDN     // the CMS VDNs (default: every agent in VDN 1)
	confirm bool
	idle    time.Duration // per-agent idle interval (default 200 ms)
	// requestTimeout is the client's and the poller's (default 2 s).
	requestTimeout time.Duration
	refuse         bool // the sink refuses every event from the start
}

func startPollerWith(t *testing.T, sim *cecsim.Sim, restore []schemas.Record, o pollerOpts) *fixture {
	t.Helper()
	if o.url == "" {
		o.url = sim.URL()
	}
	timeout := cmp.Or(o.requestTimeout, 2*time.Second)
	client, err := cec.New(cec.Config{FabricURL: o.url, GatewayURL: o.url, AppKey: "app-key", AppSecret: "app-secret", RequestTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	sess := client.NewSession(cec.SessionConfig{AgentID: 1001, Password: "agent-pass"})
	sink := newRecorder(t)
	sink.refuse = o.refuse
	for _, rec := range restore {
		sink.store(rec)
	}
	var dir poller.Directory = poller.FabricDirectory{Client: client}
	if o.directory != nil {
		dir = o.directory(dir)
	}
	cfg := poller.Config{
		Tenant:            tenantName,
		Directory:         dir,
		Monitors:          []poller.Monitor{{Source: sess}},
		Sink:              sink,
		History:           sink,
		CallsInterval:     50 * time.Millisecond,
		IdleInterval:      200 * time.Millisecond,
		RosterInterval:    100 * time.Millisecond,
		PhonesInterval:    100 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond,
		VisibilityFlush:   50 * time.Millisecond,
		RequestTimeout:    timeout,
		Concurrency:       8,
	}
	if o.idle > 0 {
		cfg.IdleInterval = o.idle
	}
	if o.sweep {
		sk := cmp.Or(o.cmsSK, "cms-sk")
		vdns := o.vdns
		if vdns == nil {
			vdns = []cec.VDN{{ID: 1}}
		}
		cms, err := client.NewCMS(cec.CMSConfig{URL: o.url, AK: "cms-ak", SK: cec.Secret(sk), CCID: 1, VDNs: vdns})
		if err != nil {
			t.Fatal(err)
		}
		cfg.CMS, cfg.SweepInterval, cfg.CMSLag, cfg.Confirm = cms, 100*time.Millisecond, o.lag, o.confirm
	}
	tn, err := poller.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fixture{sim: sim, client: client, session: sess, sink: sink, tenant: tn, cancel: cancel, done: make(chan struct{})}
	go func() { _ = sess.Run(ctx) }()
	go func() {
		defer close(f.done)
		_ = tn.Run(ctx)
	}()
	t.Cleanup(f.stop)
	return f
}

func (f *fixture) stop() {
	f.cancel()
	<-f.done
}

func (f *fixture) callsOf(workNo int) [][]string {
	var out [][]string
	for _, ev := range f.sink.on(schemas.AgentCallsSubject(tenantName, workNo)) {
		ch := calls(f.sink.t, ev)
		if ch.After == nil {
			out = append(out, nil)
			continue
		}
		out = append(out, ch.After.CallIDs)
	}
	return out
}

func validateAll(t *testing.T, recs []schemas.Record) {
	t.Helper()
	for _, rec := range recs {
		schematest.ValidateEvent(t, rec.Body)
	}
}
