package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cecbridge/cecbridge/poller"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/schemas"
)

// metrics holds the bridge's Prometheus instruments. Label values are
// bounded: tenants, endpoint names, outcome classes, event types — never a
// work number, call ID or phone number.
type metrics struct {
	reg       *prometheus.Registry
	upstream  *prometheus.CounterVec
	upstreamD *prometheus.HistogramVec
	polls     *prometheus.CounterVec
	events    *prometheus.CounterVec
	publishes *prometheus.CounterVec
	publishD  prometheus.Histogram
	lookups   *prometheus.CounterVec
	lookupD   *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cecbridge_upstream_requests_total",
			Help: "Requests to the CEC APIs by tenant, endpoint and outcome class.",
		}, []string{"tenant", "endpoint", "outcome"}),
		upstreamD: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cecbridge_upstream_request_duration_seconds",
			Help:    "Duration of CEC API requests (event long polls excluded).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"tenant", "endpoint"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cecbridge_polls_total",
			Help: "Polls by tenant, kind (calls, roster, phones) and outcome (ok, error, refused).",
		}, []string{"tenant", "kind", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cecbridge_events_total",
			Help: "Change events accepted for publishing, by tenant and event type.",
		}, []string{"tenant", "type"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cecbridge_publish_attempts_total",
			Help: "JetStream publish attempts by outcome (ok, duplicate, conflict, retry, error).",
		}, []string{"outcome"}),
		publishD: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cecbridge_publish_duration_seconds",
			Help:    "Time from publish to JetStream acknowledgement.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cecbridge_lookups_total",
			Help: "Lookup requests answered, by tenant, endpoint and code (ok or the error code).",
		}, []string{"tenant", "endpoint", "code"}),
		lookupD: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cecbridge_lookup_duration_seconds",
			Help:    "Time from receiving a lookup request to answering it.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"tenant", "endpoint"}),
	}
	m.reg.MustRegister(m.upstream, m.upstreamD, m.polls, m.events, m.publishes, m.publishD, m.lookups, m.lookupD,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// upstreamObserver is a cec.Observer for one tenant.
type upstreamObserver struct {
	m      *metrics
	tenant string
}

func (o upstreamObserver) ObserveRequest(endpoint, outcome string, d time.Duration) {
	o.m.upstream.WithLabelValues(o.tenant, endpoint, outcome).Inc()
	if endpoint != "agentevent" {
		o.m.upstreamD.WithLabelValues(o.tenant, endpoint).Observe(d.Seconds())
	}
}

// pollObserver is a poller.Observer for one tenant.
type pollObserver struct {
	m      *metrics
	tenant string
}

func (o pollObserver) ObservePoll(kind, outcome string) {
	o.m.polls.WithLabelValues(o.tenant, kind, outcome).Inc()
}

func (o pollObserver) ObserveEvent(eventType string) {
	o.m.events.WithLabelValues(o.tenant, eventType).Inc()
}

// publishObserver is a publisher.Observer.
type publishObserver struct{ m *metrics }

func (o publishObserver) ObservePublish(outcome string, d time.Duration) {
	o.m.publishes.WithLabelValues(outcome).Inc()
	if outcome == "ok" || outcome == "duplicate" {
		o.m.publishD.Observe(d.Seconds())
	}
}

// stateCollector reports gauges read at scrape time from the running
// bridge: buffer depth, visibility, sessions, token lifetime.
type stateCollector struct {
	b *Bridge

	buffered, inFlight, refused *prometheus.Desc
	agents, phones, session     *prometheus.Desc
	tokenTTL, budget, natsUp    *prometheus.Desc
	polling                     *prometheus.Desc
}

func newStateCollector(b *Bridge) *stateCollector {
	return &stateCollector{
		b:        b,
		buffered: prometheus.NewDesc("cecbridge_publish_buffered_events", "Events waiting to be published (memory and spool).", nil, nil),
		inFlight: prometheus.NewDesc("cecbridge_publish_in_flight_events", "Events published and not yet acknowledged.", nil, nil),
		refused:  prometheus.NewDesc("cecbridge_publish_refused_events_total", "Events refused because the outage buffer was full; re-detected later.", nil, nil),
		agents:   prometheus.NewDesc("cecbridge_agents", "Tracked agents by visibility (visible, not_visible).", []string{"tenant", "visibility"}, nil),
		phones:   prometheus.NewDesc("cecbridge_phones", "Tracked softphone numbers.", []string{"tenant"}, nil),
		session:  prometheus.NewDesc("cecbridge_gateway_sessions", "Gateway monitoring sessions by state.", []string{"tenant", "state"}, nil),
		tokenTTL: prometheus.NewDesc("cecbridge_token_expiry_seconds", "Seconds until the tenant's API Fabric token expires (negative: none valid).", []string{"tenant"}, nil),
		budget:   prometheus.NewDesc("cecbridge_upstream_budget_requests_per_second", "Configured upstream request budget (0 = unlimited).", []string{"tenant"}, nil),
		natsUp:   prometheus.NewDesc("cecbridge_nats_connected", "1 when the NATS connection is up.", nil, nil),
		polling:  prometheus.NewDesc("cecbridge_tenant_polling", "1 while this instance holds the tenant's lease and polls it; 0 on a standby.", []string{"tenant"}, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.buffered, c.inFlight, c.refused, c.agents, c.phones, c.session, c.tokenTTL, c.budget, c.natsUp, c.polling} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.pub.Stats()
	ch <- prometheus.MustNewConstMetric(c.buffered, prometheus.GaugeValue, float64(st.Buffered+st.Spooled))
	ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(st.InFlight))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.Refused))
	up := 0.0
	if c.b.nc.IsConnected() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.natsUp, prometheus.GaugeValue, up)
	for i, tr := range c.b.tenants {
		var ps poller.Stats
		polling := 0.0
		if p := tr.poller(); p != nil {
			ps, polling = p.Stats(), 1
		}
		ch <- prometheus.MustNewConstMetric(c.polling, prometheus.GaugeValue, polling, tr.name)
		ch <- prometheus.MustNewConstMetric(c.agents, prometheus.GaugeValue, float64(ps.AgentsVisible), tr.name, "visible")
		ch <- prometheus.MustNewConstMetric(c.agents, prometheus.GaugeValue, float64(ps.AgentsTracked-ps.AgentsVisible), tr.name, "not_visible")
		ch <- prometheus.MustNewConstMetric(c.phones, prometheus.GaugeValue, float64(ps.PhonesTracked), tr.name)
		states := map[string]int{}
		for _, s := range tr.sessions {
			states[s.State().String()]++
		}
		for _, st := range []cec.SessionState{cec.SignedOut, cec.SigningIn, cec.Ready, cec.Lost} {
			ch <- prometheus.MustNewConstMetric(c.session, prometheus.GaugeValue, float64(states[st.String()]), tr.name, st.String())
		}
		ttl := -1.0
		if exp := tr.client.TokenExpiry(); !exp.IsZero() {
			ttl = time.Until(exp).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(c.tokenTTL, prometheus.GaugeValue, ttl, tr.name)
		ch <- prometheus.MustNewConstMetric(c.budget, prometheus.GaugeValue, c.b.cfg.Tenants[i].Budget, tr.name)
	}
}

// lookupObserver is a subscriber.Observer: one count and one duration per
// answered lookup. The service passes configured tenants and its fixed
// endpoint names; codes outside the documented set count as "other", so
// every label stays bounded.
type lookupObserver struct{ m *metrics }

func (o lookupObserver) ObserveLookup(tenant, endpoint, code string, d time.Duration) {
	o.m.lookups.WithLabelValues(tenant, endpoint, lookupCode(code)).Inc()
	o.m.lookupD.WithLabelValues(tenant, endpoint).Observe(d.Seconds())
}

// lookupCode keeps "ok" and the documented error codes.
func lookupCode(code string) string {
	switch code {
	case "ok", strconv.Itoa(schemas.CodeBadRequest), strconv.Itoa(schemas.CodeNotFound), strconv.Itoa(schemas.CodeNotVisible),
		strconv.Itoa(schemas.CodeInternal), strconv.Itoa(schemas.CodeUnavailable), strconv.Itoa(schemas.CodeTimeout):
		return code
	}
	return "other"
}

// HTTPAddr is the address the metrics and health listener is bound to
// ("" until it listens, or when http.listen is off); with http.listen
// "127.0.0.1:0" it tells the chosen port.
func (b *Bridge) HTTPAddr() string {
	if p := b.httpAddr.Load(); p != nil {
		return *p
	}
	return ""
}

// readiness says what is not ready: NATS, the streams, every tenant's token
// and sessions.
func (b *Bridge) readiness(ctx context.Context) map[string]string {
	problems := map[string]string{}
	if b.nc.Status() != nats.CONNECTED {
		problems["nats"] = "not connected (" + b.nc.Status().String() + ")"
	} else if !b.streamsReady(ctx) {
		problems["streams"] = "stream " + b.cfg.Streams.Events + " not reachable"
	}
	for _, tr := range b.tenants {
		if tr.poller() == nil {
			continue // a standby: another instance holds this tenant's lease
		}
		if exp := tr.client.TokenExpiry(); exp.IsZero() || time.Now().After(exp) {
			problems["tenant."+tr.name+".token"] = "no valid API Fabric token"
		}
		for _, s := range tr.sessions {
			if !s.Ready() {
				problems["tenant."+tr.name+".session"] = "monitoring session not signed in (" + s.State().String() + ")"
			}
		}
	}
	return problems
}

// serveHTTP serves /metrics, /healthz and /readyz until ctx ends.
func serveHTTP(ctx context.Context, addr string, b *Bridge, m *metrics, log *slog.Logger) error {
	m.reg.MustRegister(newStateCollector(b), newReplicaCollector(b))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSONStatus(w, http.StatusOK, map[string]any{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		problems := b.readiness(r.Context())
		streams := b.streamsHealth(r.Context())
		if len(problems) > 0 {
			writeJSONStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "not_ready": problems, "streams": streams})
			return
		}
		writeJSONStatus(w, http.StatusOK, map[string]any{"status": "ready", "streams": streams})
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	bound := ln.Addr().String()
	b.httpAddr.Store(&bound)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("metrics and health endpoints up", "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
