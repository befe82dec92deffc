package probe_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/probe"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// c2Recorded is how a C2 Authorization header is recorded: the AK and the
// signature cut out, the timestamp and the signed headers kept, since they
// show which variant was tried.
var c2Recorded = regexp.MustCompile(`^auth-v2/\[redacted\]/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z/[a-z;-]+/\[redacted\]$`)

// A capture of a tenant with CMS names every exchange's endpoint, records
// what the client made of each answer, and keeps the headers each request
// had: a bearer token on API Fabric queries only, a C2 signature (its
// secrets cut out) on CMS requests only.
func TestCaptureOfACMSTenant(t *testing.T) {
	sim := startSim(t, cecsim.Config{CMS: cecsim.CMS{SignedHeaders: []string{"content-length", "content-type", "host"}}})
	if _, err := sim.StartCall(1002); err != nil {
		t.Fatal(err)
	}
	tc := withCMS(tenantFor("capcms", sim), simCMS("cms-sk"), sim.URL())
	p, report := runProbe(t, tc, probe.Options{GUIDWatch: 100 * time.Millisecond})
	if r := row(t, report, "cms"); r.Status != probe.StatusFix {
		t.Fatalf("cms row: %+v", r)
	}
	assertReadOnly(t, sim, 1001, nil)
	dir := t.TempDir()
	if err := p.WriteCapture(dir); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "exchanges", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ex probe.Exchange
		if err := json.Unmarshal(b, &ex); err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		if ex.Endpoint == "" || strings.HasSuffix(name, "-unknown.json") {
			t.Errorf("%s: %s %s has no endpoint", name, ex.Method, ex.Path)
		}
		if ex.Response != nil && ex.Outcome == "" {
			t.Errorf("%s: no outcome recorded", name)
		}
		seen[ex.Endpoint+" "+ex.Outcome]++
		auth, appKey := ex.Request.Headers["Authorization"], ex.Request.Headers["X-App-Key"]
		switch ex.Endpoint {
		case "queryagentcalls", "agentstatusinfobyagentids", "totalagentstate":
			if !c2Recorded.MatchString(auth) || appKey != "" {
				t.Errorf("%s: CMS request recorded with Authorization %q, X-App-Key %q", name, auth, appKey)
			}
		case "queryAgentInfo", "queryPhone", "queryAgentInfoByAccount":
			if auth != "Bearer [redacted]" || appKey != "[redacted]" {
				t.Errorf("%s: API Fabric query recorded with Authorization %q, X-App-Key %q", name, auth, appKey)
			}
		default:
			if auth != "" || appKey != "" {
				t.Errorf("%s: %s request recorded with Authorization %q, X-App-Key %q it did not have", name, ex.Endpoint, auth, appKey)
			}
		}
	}
	for _, want := range []string{"queryagentcalls unauthorized", "queryagentcalls ok", "agentstatusinfobyagentids ok"} {
		if seen[want] == 0 {
			t.Errorf("no %s exchange in the capture: %v", want, seen)
		}
	}
}
