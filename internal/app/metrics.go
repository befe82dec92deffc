package app

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

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
	swept, sweepState           *prometheus.Desc
	live, share, moves          *prometheus.Desc
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
		swept:    prometheus.NewDesc("cecbridge_sweep_agents", "Agents whose calls the CMS sweep reports (the others are polled one by one).", []string{"tenant"}, nil),
		sweepState: prometheus.NewDesc("cecbridge_sweep_state", "1 for the CMS sweep's current state (ok, partial, unavailable) on a tenant with CMS that this instance polls.",
			[]string{"tenant", "state"}, nil),
		live:  prometheus.NewDesc("cecbridge_instances_live", "Bridge instances present (leases on), this one included.", nil, nil),
		share: prometheus.NewDesc("cecbridge_assignment_share", "The tenant weight this instance may hold: ceil(total weight / live instances).", nil, nil),
		moves: prometheus.NewDesc("cecbridge_assignment_moves_total", "Tenants this instance handed over because it held more than its share.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.buffered, c.inFlight, c.refused, c.agents, c.phones, c.session, c.tokenTTL, c.budget, c.natsUp, c.polling, c.swept, c.sweepState, c.live, c.share, c.moves} {
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
	if a := c.b.assign; a != nil {
		snap := a.snapshot()
		ch <- prometheus.MustNewConstMetric(c.live, prometheus.GaugeValue, float64(snap.Live))
		ch <- prometheus.MustNewConstMetric(c.share, prometheus.GaugeValue, float64(snap.Share))
		ch <- prometheus.MustNewConstMetric(c.moves, prometheus.CounterValue, float64(snap.Moves))
	}
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
		if tr.cms != nil {
			ch <- prometheus.MustNewConstMetric(c.swept, prometheus.GaugeValue, float64(ps.SweptAgents), tr.name)
			for _, state := range []string{poller.SweepOK, poller.SweepPartial, poller.SweepUnavailable} {
				v := 0.0
				if ps.Sweep == state {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(c.sweepState, prometheus.GaugeValue, v, tr.name, state)
			}
		}
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
