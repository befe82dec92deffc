package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/subscriber"
)

// ReqResult is one request/reply load, summed over its rounds.
type ReqResult struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"per_sec"`
	Latency  Latency `json:"latency"`
}

// LookupResult compares the bridge's lookups with a bare micro echo
// endpoint under the same load: one instance of each, then two of each in
// their queue groups. agents.list pages are measured too: an answer costs
// the instance far more than it costs NATS, so they show what a second
// instance adds when the instance, not the machine, is the limit.
type LookupResult struct {
	Concurrency int       `json:"concurrency"`
	Connections int       `json:"requester_connections"`
	Rounds      int       `json:"rounds"`
	Lookup      ReqResult `json:"lookup"` // agent.calls, one instance
	Echo        ReqResult `json:"echo"`
	List        ReqResult `json:"list"` // agents.list, 100 per page
	RateRatio   float64   `json:"rate_ratio"`
	P99Ratio    float64   `json:"p99_ratio"`
	Two         *Scaling  `json:"two_instances,omitempty"`
}

// Scaling is the same loads over two instances of each service.
type Scaling struct {
	Lookup      ReqResult `json:"lookup"`
	Echo        ReqResult `json:"echo"`
	List        ReqResult `json:"list"`
	LookupRatio float64   `json:"lookup_ratio"` // two instances vs one
	EchoRatio   float64   `json:"echo_ratio"`   // what the machine allows
	ListRatio   float64   `json:"list_ratio"`
}

// load is one kind of request sent during the comparison.
type load struct {
	subject string
	bodies  [][]byte
	acc     loadAcc
}

// loadAcc sums rounds of one load.
type loadAcc struct {
	n, bad int64
	el     time.Duration
	lats   []time.Duration
}

func (a *loadAcc) result() ReqResult {
	r := ReqResult{Requests: a.n, Errors: a.bad, Seconds: a.el.Seconds(), Latency: summarise(a.lats)}
	r.PerSec = div(float64(a.n), a.el.Seconds())
	return r
}

// secondInstance is what a second cecbridge process runs for lookups: its
// own connection and state view, following the stream all along, and a
// lookup service that joins the queue group only for the rounds that
// measure two instances.
type secondInstance struct {
	nc     *nats.Conn
	view   *subscriber.View
	cfg    subscriber.Config
	cancel context.CancelFunc
	done   chan struct{}
}

func startSecondInstance(ctx context.Context, url string, cfg configs.Bridge) (*secondInstance, error) {
	nc, err := nats.Connect(url, nats.Name("cecbench-second-instance"))
	if err != nil {
		return nil, fmt.Errorf("second instance: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("second instance: %w", err)
	}
	names := make([]string, len(cfg.Tenants))
	for i, t := range cfg.Tenants {
		names[i] = t.Name
	}
	view, err := subscriber.NewView(js, subscriber.ViewConfig{EventsStream: cfg.Streams.Events, StateStream: cfg.Streams.State, Tenants: names})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("second instance: %w", err)
	}
	vctx, cancel := context.WithCancel(ctx)
	si := &secondInstance{nc: nc, view: view, cancel: cancel, done: make(chan struct{}),
		cfg: subscriber.Config{QueueGroup: cfg.Lookup.QueueGroup, Tenants: names}}
	go func() { defer close(si.done); _ = view.Run(vctx) }()
	select {
	case <-view.Ready():
		return si, nil
	case <-time.After(15 * time.Second):
		si.close()
		return nil, errors.New("second instance: state view not ready")
	}
}

// serve adds the instance's lookup service to the queue group.
func (si *secondInstance) serve(ctx context.Context) (stop func(), err error) {
	svc, err := subscriber.NewService(ctx, si.nc, si.view, nil, si.cfg)
	if err != nil {
		return nil, fmt.Errorf("second instance: %w", err)
	}
	return func() { _ = svc.Stop() }, nil
}

func (si *secondInstance) close() {
	si.cancel()
	<-si.done
	si.nc.Close()
}

// benchLookups measures agent.calls lookups against a bare micro echo
// endpoint, and agents.list pages, with conc requesters spread over
// several connections (one requester connection would bound the rate by
// its single reader). Every load runs in rounds, with one instance of
// each service and with two, in mirrored order from round to round, so
// that a drift in the machine's load (other processes, the bridge's
// polling) falls on every figure alike.
func benchLookups(ctx context.Context, url string, cfg configs.Bridge, agents []int, conc int, d time.Duration) (LookupResult, error) {
	const rounds = 6
	tenant := cfg.Tenants[0].Name
	res := LookupResult{Concurrency: conc, Connections: max(1, conc/4), Rounds: rounds}
	var calls [][]byte
	for i := 0; i < len(agents) && len(calls) < 4096; i++ {
		b, _ := json.Marshal(schemas.AgentCallsRequest{WorkNo: agents[i]})
		calls = append(calls, b)
	}
	echoSubj := "cecbench.echo." + tenant

	var conns []*nats.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range res.Connections {
		c, err := nats.Connect(url, nats.Name("cecbench-requester"))
		if err != nil {
			return res, fmt.Errorf("requester connection: %w", err)
		}
		conns = append(conns, c)
	}
	stopEcho, err := startEcho(url, echoSubj)
	if err != nil {
		return res, err
	}
	defer stopEcho()
	second, err := startSecondInstance(ctx, url, cfg)
	if err != nil {
		return res, err
	}
	defer second.close()

	newLoads := func() []*load {
		return []*load{
			{subject: schemas.LookupSubject(tenant, schemas.LookupAgentCalls), bodies: calls},
			{subject: echoSubj, bodies: calls},
			{subject: schemas.LookupSubject(tenant, schemas.LookupAgentsList), bodies: [][]byte{[]byte(`{"limit":100}`)}},
		}
	}
	one, two := newLoads(), newLoads()
	for _, l := range one {
		if err := warmUp(ctx, conns[0], l.subject, l.bodies); err != nil {
			return res, err
		}
	}
	// Every slice starts from a collected heap (an agents.list slice leaves
	// garbage behind), and the order of the loads flips every round.
	reversed := false
	runAll := func(loads []*load) {
		order := slices.Clone(loads)
		if reversed {
			slices.Reverse(order)
		}
		for _, l := range order {
			runtime.GC()
			runLoad(ctx, conns, l, conc, d/rounds)
		}
	}
	withTwo := func() error {
		stopLookup2, err := second.serve(ctx)
		if err != nil {
			return err
		}
		defer stopLookup2()
		stopEcho2, err := startEcho(url, echoSubj)
		if err != nil {
			return err
		}
		defer stopEcho2()
		runAll(two)
		return nil
	}
	for r := range rounds {
		reversed = r%2 == 1
		if r%2 == 0 {
			runAll(one)
		}
		if err := withTwo(); err != nil {
			return res, err
		}
		if r%2 == 1 {
			runAll(one)
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	res.Lookup, res.Echo, res.List = one[0].acc.result(), one[1].acc.result(), one[2].acc.result()
	res.RateRatio = div(res.Lookup.PerSec, res.Echo.PerSec)
	res.P99Ratio = div(res.Lookup.Latency.P99, res.Echo.Latency.P99)
	t := &Scaling{Lookup: two[0].acc.result(), Echo: two[1].acc.result(), List: two[2].acc.result()}
	t.LookupRatio = div(t.Lookup.PerSec, res.Lookup.PerSec)
	t.EchoRatio = div(t.Echo.PerSec, res.Echo.PerSec)
	t.ListRatio = div(t.List.PerSec, res.List.PerSec)
	res.Two = t
	return res, nil
}

// startEcho runs a bare micro echo endpoint on its own connection.
func startEcho(url, subject string) (stop func(), err error) {
	nc, err := nats.Connect(url, nats.Name("cecbench-echo"))
	if err != nil {
		return nil, fmt.Errorf("echo connection: %w", err)
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name: "cecbench_echo", Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{
			Subject: subject,
			Handler: micro.HandlerFunc(func(r micro.Request) { _ = r.Respond(r.Data()) }),
		},
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("echo service: %w", err)
	}
	return func() { _ = svc.Stop(); nc.Close() }, nil
}

// warmUp sends requests until 200 in a row are answered without error
// (a new instance's state view may still be loading), at most 15 s.
func warmUp(ctx context.Context, nc *nats.Conn, subject string, bodies [][]byte) error {
	deadline := time.Now().Add(15 * time.Second)
	for ok, i := 0, 0; ok < 200; i++ {
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("warm-up of %s: %d answered in a row before the deadline", subject, ok)
		}
		m, err := nc.Request(subject, bodies[i%len(bodies)], 2*time.Second)
		if err != nil || m.Header.Get(micro.ErrorCodeHeader) != "" {
			ok = 0
			continue
		}
		ok++
	}
	return nil
}

// runLoad sends l's requests from conc workers spread over conns for d and
// adds what it measured to l.acc. A reply with a micro error header counts
// as an error.
func runLoad(ctx context.Context, conns []*nats.Conn, l *load, conc int, d time.Duration) {
	var next, bad atomic.Int64
	lats := make([][]time.Duration, conc)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range conc {
		nc := conns[w%len(conns)]
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				b := l.bodies[int(next.Add(1))%len(l.bodies)]
				t0 := time.Now()
				m, err := nc.Request(l.subject, b, 2*time.Second)
				lat := time.Since(t0)
				if err != nil || m.Header.Get(micro.ErrorCodeHeader) != "" {
					bad.Add(1)
					continue
				}
				lats[w] = append(lats[w], lat)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(lats...)
	l.acc.el += time.Since(start)
	l.acc.n += int64(len(all))
	l.acc.bad += bad.Load()
	l.acc.lats = append(l.acc.lats, all...)
}
