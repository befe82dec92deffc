package app_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
)

// scrapeLabels are the target labels Prometheus adds to every series.
var scrapeLabels = []string{"instance", "job"}

// exported maps every series name a running bridge exposes (histograms as
// their _bucket, _sum and _count series) to its label names.
func exported(fams map[string]*dto.MetricFamily) map[string][]string {
	out := map[string][]string{}
	for name, f := range fams {
		labels := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		names := slices.Sorted(maps.Keys(labels))
		if f.GetType() == dto.MetricType_HISTOGRAM {
			out[name+"_bucket"] = append(slices.Clone(names), "le")
			out[name+"_sum"], out[name+"_count"] = names, names
			continue
		}
		out[name] = names
	}
	return out
}

// selector is one metric named in an expression, with the labels its
// matchers use.
type selector struct {
	metric string
	labels []string
}

var (
	identRE   = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`)
	matcherRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	legendRE  = regexp.MustCompile(`\{\{\s*(?:\$labels\.)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
)

// parsePromQL finds the metric selectors of a PromQL expression and the
// label names its grouping clauses (by, without, on, ignoring,
// group_left, group_right) and label_values() use.
func parsePromQL(expr string) (sels []selector, grouping []string) {
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '[':
			i += strings.IndexByte(expr[i:], ']') + 1
		case identRE.MatchString(expr[i:]) && (i == 0 || !isIdentByte(expr[i-1])):
			id := identRE.FindString(expr[i:])
			i += len(id)
			rest := strings.TrimLeft(expr[i:], " \t\n")
			switch {
			case strings.HasPrefix(id, "cecbridge_"):
				s := selector{metric: id}
				if strings.HasPrefix(rest, "{") {
					end := strings.IndexByte(rest, '}')
					for _, m := range matcherRE.FindAllStringSubmatch(stripStrings(rest[1:end]), -1) {
						s.labels = append(s.labels, m[1])
					}
				}
				sels = append(sels, s)
			case slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, id) && strings.HasPrefix(rest, "("):
				for l := range strings.SplitSeq(rest[1:strings.IndexByte(rest, ')')], ",") {
					if l = strings.TrimSpace(l); l != "" {
						grouping = append(grouping, l)
					}
				}
			case id == "label_values" && strings.HasPrefix(rest, "("):
				args := strings.Split(rest[1:strings.IndexByte(rest, ')')], ",")
				grouping = append(grouping, strings.TrimSpace(args[len(args)-1]))
			}
		default:
			i++
		}
	}
	return sels, grouping
}

func isIdentByte(b byte) bool {
	return b == '_' || b == ':' || b == '.' || b == '$' || (b >= '0' && b <= '9') || (b|0x20 >= 'a' && b|0x20 <= 'z')
}

var stringRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

func stripStrings(s string) string { return stringRE.ReplaceAllString(s, `""`) }

// checkExpr checks one expression (and the labels its legend or
// annotations use) against what the bridge exports.
func checkExpr(t *testing.T, where, expr string, uses []string, series map[string][]string) {
	t.Helper()
	sels, grouping := parsePromQL(expr)
	if len(sels) == 0 {
		t.Errorf("%s: %q names no cecbridge metric", where, expr)
		return
	}
	have := slices.Clone(scrapeLabels)
	for _, s := range sels {
		labels, ok := series[s.metric]
		if !ok {
			t.Errorf("%s: %s is not a metric the bridge exports", where, s.metric)
			continue
		}
		have = append(have, labels...)
		for _, l := range s.labels {
			if !slices.Contains(labels, l) && !slices.Contains(scrapeLabels, l) {
				t.Errorf("%s: %s has no label %q (it has %v)", where, s.metric, l, labels)
			}
		}
	}
	for _, l := range append(grouping, uses...) {
		if !slices.Contains(have, l) {
			t.Errorf("%s: label %q is on none of %v", where, l, sels)
		}
	}
}

func legendLabels(s string) []string {
	var out []string
	for _, m := range legendRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// The Grafana dashboard and the Prometheus alert rules in deploy/ use only
// metric families a running bridge exports, with labels they have: the
// check is built from the bridge's own /metrics, not from a list.
func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	e := newOpsEnv(t, 4)
	rb := runBridge(t, e.cfg, e.srv.Connect(t), debugLogger(&testbuf.Buffer{}))
	base := rb.httpBase(t)
	nc := e.srv.Connect(t)
	waitReadyz(t, base, "ready", func(code int, _ readyz) bool { return code == 200 })
	// Traffic for every family: a call that starts and ends (a detection
	// window), and a lookup.
	id, err := e.sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	subj := schemas.LookupPrefix + ".ops." + schemas.LookupAgentCalls
	testwait.For(t, 15*time.Second, "the call in a lookup", func() bool {
		return strings.Contains(rawLookup(t, nc, subj, schemas.AgentCallsRequest{WorkNo: 1002}, true), id)
	})
	if err := e.sim.EndCall(1002, id); err != nil {
		t.Fatal(err)
	}
	var series map[string][]string
	testwait.For(t, 15*time.Second, "a detection window measured", func() bool {
		fams := scrapeMetrics(t, base)
		series = exported(fams)
		v, ok := sample(fams, "cecbridge_detection_window_seconds", map[string]string{"tenant": "ops"})
		return ok && v > 0
	})

	// Grafana: every target, the template query and the legends.
	data, err := os.ReadFile("../../deploy/grafana/cecbridge.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr   string `json:"expr"`
				Legend string `json:"legendFormat"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			checkExpr(t, "dashboard panel "+p.Title, tg.Expr, legendLabels(tg.Legend), series)
			exprs++
		}
	}
	for _, v := range dash.Templating.List {
		var q struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) == nil && q.Query != "" {
			checkExpr(t, "dashboard variable "+v.Name, q.Query, nil, series)
			exprs++
		}
	}

	// Alerts: every rule's expression and the labels its text uses.
	data, err = os.ReadFile("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			var uses []string
			for _, text := range r.Annotations {
				uses = append(uses, legendLabels(text)...)
			}
			checkExpr(t, "alert "+r.Alert, r.Expr, uses, series)
			alerts++
		}
	}
	if exprs < 10 || alerts < 6 {
		t.Errorf("checked %d dashboard and %d alert expressions: files not read as expected", exprs, alerts)
	}
	t.Logf("checked %d dashboard and %d alert expressions against %d exported series", exprs, alerts, len(series))
}

// The parser the check relies on finds selectors, matchers and grouping
// labels, and nothing inside strings or ranges.
func TestPromQLParserForTheCheck(t *testing.T) {
	sels, grouping := parsePromQL(`sum by (tenant, le) (rate(cecbridge_x_bucket{tenant=~"$tenant",outcome!="a,b=c"}[5m])) / on (instance) group_left cecbridge_y and label_values(cecbridge_z, tenant)`)
	got := fmt.Sprint(sels, grouping)
	want := "[{cecbridge_x_bucket [tenant outcome]} {cecbridge_y []} {cecbridge_z []}] [tenant le instance tenant]"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if l := legendLabels("{{tenant}} {{ $labels.assumption }}"); !slices.Equal(l, []string{"tenant", "assumption"}) {
		t.Errorf("legend labels %v", l)
	}
}
