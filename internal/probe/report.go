package probe

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cecbridge/cecbridge/configs"
)

// Status is how a check came out.
type Status string

// The statuses, from best to worst. Fix means the bridge works once the
// row's suggestion is applied; Fail means it cannot work (or the probe
// could not find out) until someone acts.
const (
	StatusOK   Status = "ok"
	StatusSkip Status = "skip"
	StatusWarn Status = "warn"
	StatusFix  Status = "fix"
	StatusFail Status = "fail"
)

// Row is one line of the report.
type Row struct {
	Check    string       `json:"check"`
	Status   Status       `json:"status"`
	Answered string       `json:"answered"` // what the vendor answered
	Bridge   string       `json:"bridge"`   // what the bridge will do with it
	Suggest  []Suggestion `json:"suggest,omitempty"`
	// Timing holds measured durations, kept apart from the behaviour so
	// that two reports of one behaviour compare equal.
	Timing string `json:"timing,omitempty"`
}

// Suggestion is a change to the tenant's configuration.
type Suggestion struct {
	Key   string `json:"key"`   // the tenant key, e.g. no_call_codes
	Value any    `json:"value"` // []string for no_call_codes, a duration string for token_lifetime
}

// YAML renders the suggestion as a line of the tenant's configuration.
func (s Suggestion) YAML() string {
	b, _ := yaml.Marshal(map[string]any{s.Key: s.Value})
	line := strings.TrimSpace(string(b))
	if codes, ok := s.Value.([]string); ok { // flow style reads better in a table
		quoted := make([]string, len(codes))
		for i, c := range codes {
			quoted[i] = `"` + c + `"`
		}
		line = s.Key + ": [" + strings.Join(quoted, ", ") + "]"
	}
	return line
}

// Latency is what one endpoint took and how it answered during the probe.
type Latency struct {
	Endpoint  string         `json:"endpoint"`
	Requests  int            `json:"requests"`
	Throttled int            `json:"throttled"`
	Outcomes  map[string]int `json:"outcomes"`
	P50       float64        `json:"p50_ms"`
	Max       float64        `json:"max_ms"`
}

// Verdicts.
const (
	VerdictWorks      = "works as configured"
	VerdictWithChange = "works with the suggested changes"
	VerdictCannot     = "cannot work as configured"
)

// Report is everything one probe run found.
type Report struct {
	Tenant   string       `json:"tenant"`
	Verdict  string       `json:"verdict"`
	Checks   []Row        `json:"checks"`
	Suggest  []Suggestion `json:"suggested_config,omitempty"`
	Latency  []Latency    `json:"latency"`
	Started  time.Time    `json:"started"`
	Duration float64      `json:"duration_s"`
}

// finish sets the verdict and merges the suggestions.
func (r *Report) finish() {
	worst := StatusOK
	r.Suggest = nil
	for _, row := range r.Checks {
		worst = worse(worst, row.Status)
		for _, s := range row.Suggest {
			r.Suggest = mergeSuggestion(r.Suggest, s)
		}
	}
	switch worst {
	case StatusFail:
		r.Verdict = VerdictCannot
	case StatusFix:
		r.Verdict = VerdictWithChange
	default:
		r.Verdict = VerdictWorks
	}
}

func mergeSuggestion(list []Suggestion, s Suggestion) []Suggestion {
	for i, have := range list {
		if have.Key != s.Key {
			continue
		}
		a, aok := have.Value.([]string)
		b, bok := s.Value.([]string)
		if aok && bok {
			merged := slices.Clone(a)
			for _, v := range b {
				if !slices.Contains(merged, v) {
					merged = append(merged, v)
				}
			}
			list[i].Value = merged
		} else {
			list[i] = s
		}
		return list
	}
	return append(list, s)
}

// ExitCode is the probe's exit status: 0 the configuration works, 2 it
// works with the suggested changes, 1 it cannot work.
func (r *Report) ExitCode() int {
	switch r.Verdict {
	case VerdictWorks:
		return 0
	case VerdictWithChange:
		return 2
	}
	return 1
}

// Apply returns tc with the suggestions applied. Suggestions read back
// from a JSON report work too.
func Apply(tc configs.Tenant, suggestions []Suggestion) (configs.Tenant, error) {
	if tc.CMS != nil {
		c := *tc.CMS // the caller's cms block stays as it was
		tc.CMS = &c
	}
	for _, s := range suggestions {
		if strings.HasPrefix(s.Key, "cms.") && tc.CMS == nil {
			return tc, fmt.Errorf("probe: suggestion %s: the tenant has no cms block", s.Key)
		}
		switch s.Key {
		case "no_call_codes", "cms.signed_headers":
			list, ok := stringList(s.Value)
			if !ok {
				return tc, fmt.Errorf("probe: suggestion %s: not a list of strings", s.Key)
			}
			if s.Key == "no_call_codes" {
				tc.NoCallCodes = list
			} else {
				tc.CMS.SignedHeaders = list
			}
		case "cms.timestamp":
			str, ok := s.Value.(string)
			if !ok {
				return tc, fmt.Errorf("probe: suggestion %s: not a string", s.Key)
			}
			tc.CMS.Timestamp = str
		case "cms.confirm":
			b, ok := s.Value.(bool)
			if !ok {
				return tc, fmt.Errorf("probe: suggestion %s: not true or false", s.Key)
			}
			tc.CMS.Confirm = b
		case "token_lifetime":
			str, _ := s.Value.(string)
			d, err := time.ParseDuration(str)
			if err != nil {
				return tc, fmt.Errorf("probe: suggestion %s: %w", s.Key, err)
			}
			tc.TokenLifetime = d
		default:
			return tc, fmt.Errorf("probe: unknown suggestion key %q", s.Key)
		}
	}
	return tc, nil
}

// stringList reads a list of strings, as suggested or decoded from JSON.
func stringList(v any) ([]string, bool) {
	switch l := v.(type) {
	case []string:
		return slices.Clone(l), true
	case []any:
		out := make([]string, len(l))
		for i, e := range l {
			str, ok := e.(string)
			if !ok {
				return nil, false
			}
			out[i] = str
		}
		return out, true
	}
	return nil, false
}

// WriteTable prints the report for a terminal: per check, what the
// vendor answered, then what the bridge will do and the config to set.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "tenant %s: %s\n\n", r.Tenant, r.Verdict)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tTHE VENDOR ANSWERED / THE BRIDGE WILL / SUGGESTED CONFIG")
	for _, row := range r.Checks {
		answered := row.Answered
		if row.Timing != "" {
			answered += " (" + row.Timing + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", row.Check, row.Status, answered)
		fmt.Fprintf(tw, "\t\tbridge: %s\n", row.Bridge)
		for _, s := range row.Suggest {
			fmt.Fprintf(tw, "\t\tset: %s\n", s.YAML())
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "ENDPOINT\tREQUESTS\tTHROTTLED\tP50\tMAX\tOUTCOMES")
	for _, l := range r.Latency {
		var outs []string
		for _, o := range slices.Sorted(maps.Keys(l.Outcomes)) {
			outs = append(outs, fmt.Sprintf("%s=%d", o, l.Outcomes[o]))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1fms\t%.1fms\t%s\n", l.Endpoint, l.Requests, l.Throttled, l.P50, l.Max, strings.Join(outs, " "))
	}
	if len(r.Suggest) > 0 {
		fmt.Fprintf(tw, "\nsuggested configuration for tenant %s:\n", r.Tenant)
		for _, s := range r.Suggest {
			fmt.Fprintf(tw, "    %s\n", s.YAML())
		}
	}
	return tw.Flush()
}
