package diagnose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cecbridge/cecbridge/poller/cec"
)

// The assumptions watched; they are the values of the assumption label.
const (
	// NoCallAnswer: an idle agent's allcallinfoEx answer is understood
	// (an empty list, or a code in no_call_codes).
	NoCallAnswer = "no_call_answer"
	// TokenLifetime: tokenByAkSk grants the lifetime asked for.
	TokenLifetime = "token_lifetime"
	// ClockSkew: the vendor's clock agrees with ours.
	ClockSkew = "clock_skew"
	// CMSSignature: CC-CMS accepts the client's C2 signature.
	CMSSignature = "cms_signature"
	// CMSUnauthorized: CC-CMS lets this client (host and AK) ask.
	CMSUnauthorized = "cms_unauthorized"
)

// Assumptions lists every assumption watched.
var Assumptions = []string{NoCallAnswer, TokenLifetime, ClockSkew, CMSSignature, CMSUnauthorized}

const (
	// callWindow is how many allcallinfoEx answers one verdict rests on.
	callWindow = 100
	// codeShare is the share of a window one unexplained code must reach
	// to be named: more than transient failures produce, less than the
	// idle share of a busy contact center.
	codeShare = 0.25
	// skewTolerance is how far the clocks may drift apart unremarked.
	skewTolerance = 30 * time.Second
)

// Finding is one contradicted assumption.
type Finding struct {
	Tenant     string    `json:"tenant"`
	Assumption string    `json:"assumption"`
	Finding    string    `json:"finding"`
	Fix        string    `json:"fix"`
	Since      time.Time `json:"since"`
}

type key struct{ tenant, assumption string }

// Diagnoser keeps the findings of every tenant. It is safe for concurrent
// use and is a prometheus.Collector.
type Diagnoser struct {
	log *slog.Logger

	mu      sync.Mutex
	tenants []string
	active  map[key]*Finding
	logged  map[string]bool // findings already logged, by tenant, assumption and what
	counts  map[key]float64

	violated, violations *prometheus.Desc
}

// New returns a Diagnoser that logs findings to log.
func New(log *slog.Logger) *Diagnoser {
	return &Diagnoser{
		log:    log,
		active: map[key]*Finding{},
		logged: map[string]bool{},
		counts: map[key]float64{},
		violated: prometheus.NewDesc("cecbridge_vendor_assumption_violated",
			"1 while the vendor contradicts an assumption of the configuration (see /readyz for the fix).",
			[]string{"tenant", "assumption"}, nil),
		violations: prometheus.NewDesc("cecbridge_vendor_assumption_violations_total",
			"Vendor answers that contradicted an assumption of the configuration.",
			[]string{"tenant", "assumption"}, nil),
	}
}

// Tenant returns the observer for tenant's vendor client: it passes every
// measurement on to next (which may be nil) and watches the facts.
func (d *Diagnoser) Tenant(tenant string, next cec.Observer) cec.Observer {
	d.mu.Lock()
	if !slices.Contains(d.tenants, tenant) {
		d.tenants = append(d.tenants, tenant)
	}
	d.mu.Unlock()
	return &watch{d: d, tenant: tenant, next: next, codes: map[string]int{}, refused: map[string]string{}}
}

// Findings returns the standing findings, ordered by tenant and assumption.
func (d *Diagnoser) Findings() []Finding {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Finding, 0, len(d.active))
	for _, f := range d.active {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b Finding) int {
		if a.Tenant != b.Tenant {
			return strings.Compare(a.Tenant, b.Tenant)
		}
		return strings.Compare(a.Assumption, b.Assumption)
	})
	return out
}

// raise records a finding; what identifies it for logging once.
func (d *Diagnoser) raise(tenant, assumption, what, finding, fix string) {
	d.mu.Lock()
	k := key{tenant, assumption}
	f := d.active[k]
	if f == nil {
		f = &Finding{Tenant: tenant, Assumption: assumption, Since: time.Now().UTC()}
		d.active[k] = f
	}
	f.Finding, f.Fix = finding, fix
	id := tenant + "|" + assumption + "|" + what
	first := !d.logged[id]
	d.logged[id] = true
	d.mu.Unlock()
	if first {
		d.log.LogAttrs(context.Background(), slog.LevelWarn, "the vendor contradicts an assumption of the configuration",
			slog.String("tenant", tenant), slog.String("assumption", assumption),
			slog.String("finding", finding), slog.String("fix", fix))
	}
}

// clear withdraws a finding whose evidence went away.
func (d *Diagnoser) clear(tenant, assumption string) {
	d.mu.Lock()
	_, was := d.active[key{tenant, assumption}]
	delete(d.active, key{tenant, assumption})
	d.mu.Unlock()
	if was {
		d.log.LogAttrs(context.Background(), slog.LevelInfo, "the vendor no longer contradicts an assumption",
			slog.String("tenant", tenant), slog.String("assumption", assumption))
	}
}

func (d *Diagnoser) count(tenant, assumption string) {
	d.mu.Lock()
	d.counts[key{tenant, assumption}]++
	d.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (d *Diagnoser) Describe(ch chan<- *prometheus.Desc) {
	ch <- d.violated
	ch <- d.violations
}

// Collect implements prometheus.Collector: every tenant and assumption,
// so that a dashboard finds the zeros too.
func (d *Diagnoser) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.tenants {
		for _, a := range Assumptions {
			k := key{t, a}
			v := 0.0
			if d.active[k] != nil {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(d.violated, prometheus.GaugeValue, v, t, a)
			ch <- prometheus.MustNewConstMetric(d.violations, prometheus.CounterValue, d.counts[k], t, a)
		}
	}
}

// watch is one tenant's observer.
type watch struct {
	d      *Diagnoser
	tenant string
	next   cec.Observer

	mu      sync.Mutex
	answers int               // allcallinfoEx answers in the current window
	codes   map[string]int    // unexplained codes among them
	refused map[string]string // CMS endpoint -> the assumption its last answer contradicted
}

// ObserveRequest implements cec.Observer.
func (w *watch) ObserveRequest(endpoint, outcome string, d time.Duration) {
	if w.next != nil {
		w.next.ObserveRequest(endpoint, outcome, d)
	}
	if outcome == "ok" && isCMS(endpoint) {
		w.cmsAnswered(endpoint)
		return
	}
	if endpoint != "allcallinfoEx" || (outcome != "ok" && outcome != "vendor") {
		return
	}
	w.mu.Lock()
	w.answers++
	if w.answers < callWindow {
		w.mu.Unlock()
		return
	}
	top, n := "", 0
	for c, k := range w.codes {
		if k > n || (k == n && c < top) {
			top, n = c, k
		}
	}
	answers := w.answers
	w.answers, w.codes = 0, map[string]int{}
	w.mu.Unlock()
	if float64(n) < codeShare*float64(answers) {
		w.d.clear(w.tenant, NoCallAnswer)
		return
	}
	w.d.raise(w.tenant, NoCallAnswer, top,
		fmt.Sprintf("allcallinfoEx answered code %s for %d of the last %d agents asked; they show as not visible", top, n, answers),
		noCallFix(top))
}

func noCallFix(code string) string {
	if code == "000-002" {
		return "code 000-002 (bad parameter) usually means the monitoring agent may not ask about these agents: " +
			"give each monitor's work_nos the range of its own VDN; if idle agents get it too, run cecbridge probe"
	}
	return fmt.Sprintf(`if code %s is how this tenant says "no call" (cecbridge probe tells), set no_call_codes: ["%s"]; `+
		"until then ended calls on these agents are not reported", code, code)
}

// ObserveCode implements cec.FactObserver.
func (w *watch) ObserveCode(endpoint, code string) {
	if f, ok := w.next.(cec.FactObserver); ok {
		f.ObserveCode(endpoint, code)
	}
	if endpoint != "allcallinfoEx" {
		return
	}
	w.mu.Lock()
	w.codes[code]++
	w.mu.Unlock()
	w.d.count(w.tenant, NoCallAnswer)
}

// ObserveToken implements cec.FactObserver.
func (w *watch) ObserveToken(g cec.TokenGrant) {
	if f, ok := w.next.(cec.FactObserver); ok {
		f.ObserveToken(g)
	}
	if g.Granted > 0 && g.Granted < g.Requested {
		w.d.count(w.tenant, TokenLifetime)
		what := g.Granted.String()
		fix := fmt.Sprintf("set token_lifetime: %s (the bridge already renews at 80 %% of what was granted)", what)
		if g.Granted < time.Minute {
			fix = "ask the vendor why tokens last under a minute; the bridge renews at 80 % of what was granted"
		}
		w.d.raise(w.tenant, TokenLifetime, what,
			fmt.Sprintf("tokenByAkSk granted %s though %s was asked", g.Granted, g.Requested), fix)
	} else {
		w.d.clear(w.tenant, TokenLifetime)
	}
	if skew, ok := g.Skew(); ok && skew.Abs() > skewTolerance {
		w.d.count(w.tenant, ClockSkew)
		dir := "ahead of"
		if skew < 0 {
			dir = "behind"
		}
		w.d.raise(w.tenant, ClockSkew, dir,
			fmt.Sprintf("the vendor's clock is %s %s this host's", skew.Abs().Round(time.Second), dir),
			"synchronise this host's clock (NTP): event times and signed CMS requests depend on it")
	} else if ok {
		w.d.clear(w.tenant, ClockSkew)
	}
}

func isCMS(endpoint string) bool {
	return endpoint == cec.EndpointQueryAgentCalls || endpoint == cec.EndpointAgentStates || endpoint == cec.EndpointTotalAgentStates
}

// ObserveRefusal implements cec.RefusalObserver: CMS refused a request
// for a reason no retry mends.
func (w *watch) ObserveRefusal(endpoint string, err error) {
	if f, ok := w.next.(cec.RefusalObserver); ok {
		f.ObserveRefusal(endpoint, err)
	}
	assumption := CMSUnauthorized
	finding := fmt.Sprintf("CC-CMS refused this client on %s (HTTP 403 or code 0101003): the roster is not swept, every agent is polled one by one", endpoint)
	fix := "ask the vendor's operations to put this host on the tenant's IP whitelist and to let the AK use the CMS monitoring interfaces"
	if errors.Is(err, cec.ErrSignatureRefused) {
		assumption = CMSSignature
		finding = fmt.Sprintf("CC-CMS refused the signature of %s requests (HTTP 401): the roster is not swept, every agent is polled one by one", endpoint)
		fix = "check cms.ak, cms.sk and this host's clock (NTP); if they are right, run cecbridge probe: " +
			"it signs the other ways CMS may expect and suggests cms.signed_headers and cms.timestamp"
	}
	w.mu.Lock()
	w.refused[endpoint] = assumption
	w.mu.Unlock()
	w.d.count(w.tenant, assumption)
	w.d.raise(w.tenant, assumption, "refused", finding, fix)
	w.settleCMS()
}

// cmsAnswered withdraws what endpoint's refusals contradicted.
func (w *watch) cmsAnswered(endpoint string) {
	w.mu.Lock()
	_, was := w.refused[endpoint]
	delete(w.refused, endpoint)
	w.mu.Unlock()
	if was {
		w.settleCMS()
	}
}

// settleCMS clears each CMS finding no endpoint's last answer holds up.
func (w *watch) settleCMS() {
	w.mu.Lock()
	held := map[string]bool{}
	for _, a := range w.refused {
		held[a] = true
	}
	w.mu.Unlock()
	for _, a := range []string{CMSSignature, CMSUnauthorized} {
		if !held[a] {
			w.d.clear(w.tenant, a)
		}
	}
}
