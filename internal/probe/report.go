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

// suggestionsYAML renders suggestions as the nested YAML of a tenant's
// entry: a dotted key such as cms.timestamp becomes timestamp under cms,
// and lists are written in flow style, which reads best in a table.
func suggestionsYAML(suggestions []Suggestion) (*yaml.Node, error) {
	tenant := &yaml.Node{Kind: yaml.MappingNode}
	for _, s := range suggestions {
		var value yaml.Node
		if err := value.Encode(s.Value); err != nil {
			return nil, fmt.Errorf("probe: suggestion %s: %w", s.Key, err)
		}
		if value.Kind == yaml.SequenceNode {
			value.Style = yaml.FlowStyle
			for _, item := range value.Content {
				item.Style = yaml.DoubleQuotedStyle
			}
		}
		keys := strings.Split(s.Key, ".")
		block := tenant
		for _, k := range keys[:len(keys)-1] {
			block = mappingUnder(block, k)
		}
		block.Content = append(block.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: keys[len(keys)-1]}, &value)
	}
	return tenant, nil
}

// mappingUnder returns the mapping at key of m, adding it if m has none.
func mappingUnder(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.MappingNode {
			return m.Content[i+1]
		}
	}
	sub := &yaml.Node{Kind: yaml.MappingNode}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, sub)
	return sub
}

// writeYAML writes n as YAML indented by two spaces, each line after
// prefix.
func writeYAML(w io.Writer, prefix string, n *yaml.Node) error {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return fmt.Errorf("probe: suggested configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("probe: suggested configuration: %w", err)
	}
	for line := range strings.Lines(b.String()) {
		if _, err := io.WriteString(w, prefix+line); err != nil {
			return err
		}
	}
	return nil
}

// writeSuggested writes the report's suggestions as a YAML document an
// operator can paste: the tenant's entry under tenants, named so it can
// be found in the file.
func (r *Report) writeSuggested(w io.Writer) error {
	entry, err := suggestionsYAML(r.Suggest)
	if err != nil {
		return err
	}
	entry.Content = append([]*yaml.Node{{Kind: yaml.ScalarNode, Value: "name"}, {Kind: yaml.ScalarNode, Value: r.Tenant}}, entry.Content...)
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "tenants"}, {Kind: yaml.SequenceNode, Content: []*yaml.Node{entry}},
	}}
	if _, err := fmt.Fprintf(w, "\n# suggested configuration for tenant %s: merge into its entry under tenants\n", r.Tenant); err != nil {
		return err
	}
	return writeYAML(w, "", doc)
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
		if err := writeRowSuggestions(tw, row.Suggest); err != nil {
			return err
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
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Suggest) == 0 {
		return nil
	}
	return r.writeSuggested(w)
}

// writeRowSuggestions writes a row's suggestions in its last column: one
// line after "set:" when that says it all, else the nested YAML below it.
func writeRowSuggestions(tw io.Writer, suggestions []Suggestion) error {
	if len(suggestions) == 0 {
		return nil
	}
	entry, err := suggestionsYAML(suggestions)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := writeYAML(&b, "", entry); err != nil {
		return err
	}
	if text := strings.TrimSuffix(b.String(), "\n"); !strings.Contains(text, "\n") {
		_, err := fmt.Fprintf(tw, "\t\tset: %s\n", text)
		return err
	}
	if _, err := fmt.Fprintln(tw, "\t\tset:"); err != nil {
		return err
	}
	return writeYAML(tw, "\t\t  ", entry)
}
