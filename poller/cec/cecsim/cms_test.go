package cecsim_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// cms sends a C2-signed CMS request, signed by the client package's signer.
func cms(t testing.TB, sim *cecsim.Sim, path string, body any) reply {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := cec.NewC2Signer("cms-ak", "cms-sk", nil, cec.TimestampSeconds)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(sim.URL() + "/rest/cmsapp/v1/openapi/" + path)
	auth := signer.Sign("POST", u.EscapedPath(), "", map[string]string{"host": u.Host}, raw, time.Now())
	return do(t, "POST", u.String(), map[string]string{"Authorization": auth}, string(raw))
}

func resultCode(t testing.TB, r reply) string {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("HTTP %d: %s", r.status, r.body)
	}
	c, _ := r.json(t)["resultCode"].(string)
	return c
}

func ids(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

func TestCMSEnforcesItsLimitsAndParameters(t *testing.T) {
	sim := start(t, cecsim.Config{Agents: 10})
	for _, tc := range []struct {
		path string
		body any
		want string
	}{
		{"agentgroup/queryagentcalls", map[string]any{"ccId": 1, "vdn": 1, "agentIds": ids(1001, 3000)}, "0100000"},
		{"agentgroup/queryagentcalls", map[string]any{"ccId": 1, "vdn": 1, "agentIds": ids(1001, 3001)}, "0100002"},
		{"agentgroup/agentstatusinfobyagentids", map[string]any{"ccId": "1", "vdn": "1", "agentIds": ids(1001, 6000)}, "0100000"},
		{"agentgroup/agentstatusinfobyagentids", map[string]any{"ccId": 1, "vdn": 1, "agentIds": ids(1001, 6001)}, "0100002"},
		{"agentgroup/queryagentcalls", map[string]any{"ccId": 2, "vdn": 1, "agentIds": []int{1001}}, "0100002"},
		{"agentgroup/queryagentcalls", map[string]any{"ccId": 1, "vdn": 5001, "agentIds": []int{1001}}, "0100002"},
		{"agentgroup/queryagentcalls", map[string]any{"ccId": 1, "vdn": 1, "agentIds": []int{}}, "0100002"},
		{"agentgroup/queryagentcalls", map[string]any{"ccId": 1, "vdn": 1, "agentIds": []int{100}}, "0100002"},
		{"agentgroup/queryagentcalls", map[string]any{"vdn": 1, "agentIds": []int{1001}}, "0100002"},
		{"vdn/totalagentstate", map[string]any{"ccId": 1, "vdn": 1}, "0100000"},
	} {
		if got := resultCode(t, cms(t, sim, tc.path, tc.body)); got != tc.want {
			t.Errorf("%s %v: %s, want %s", tc.path, tc.body, got, tc.want)
		}
	}
	// An unsigned request is refused outright.
	if r := do(t, "POST", sim.URL()+"/rest/cmsapp/v1/openapi/vdn/totalagentstate", nil, map[string]any{"ccId": 1, "vdn": 1}); r.status != 401 {
		t.Errorf("unsigned: HTTP %d", r.status)
	}
}

// truthCalls reads the ground truth over the control API and returns the
// call changes by call ID.
func truthCalls(t testing.TB, sim *cecsim.Sim) map[string][]cecsim.Change {
	t.Helper()
	r := do(t, "GET", sim.URL()+"/cecsim/truth", nil, nil)
	out := map[string][]cecsim.Change{}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		var c cecsim.Change
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		if c.CallID != "" {
			out[c.CallID] = append(out[c.CallID], c)
		}
	}
	return out
}

// Every call of the workload rings first, is answered or released, may be
// held and taken back, and the ground truth records each step.
func TestWorkloadCallsMoveFromAlertingThroughTalkingToReleaseInTheTruth(t *testing.T) {
	sim := start(t, cecsim.Config{Agents: 50, Workload: cecsim.Workload{
		Enabled: true, CallsPerAgentHour: 3600, MeanCallDuration: 400 * time.Millisecond,
		MeanAlerting: 60 * time.Millisecond, HoldShare: 0.5, MeanHold: 60 * time.Millisecond, OutboundShare: 0.5,
		SignInOutPerHour: 1, SoftphoneChangesPerHour: 1, PhoneFlapsPerHour: 1, RosterChangesPerHour: 1,
	}})
	var calls map[string][]cecsim.Change
	testwait.For(t, 10*time.Second, "answered, held and released calls of both directions", func() bool {
		calls = truthCalls(t, sim)
		seen := map[string]bool{}
		for _, cs := range calls {
			for _, c := range cs {
				seen[c.Kind+":"+c.After+c.Direction] = true
			}
		}
		return seen["call_status:talking"] && seen["call_status:held"] && seen["call_added:alertinginbound"] &&
			seen["call_added:alertingoutbound"] && seen["call_removed:"]
	})
	next := map[string][]string{
		"alerting": {"talking"}, "talking": {"held"}, "held": {"talking"},
	}
	for id, cs := range calls {
		// The truth starts empty, so every call's history starts with it.
		if cs[0].Kind != cecsim.KindCallAdded || cs[0].After != "alerting" {
			t.Fatalf("call %s starts with %+v", id, cs[0])
		}
		status := cs[0].After
		for _, c := range cs[1:] {
			switch c.Kind {
			case cecsim.KindCallStatus:
				if c.Before != status || !contains(next[status], c.After) {
					t.Fatalf("call %s: %s -> %s after %s", id, c.Before, c.After, status)
				}
				status = c.After
			case cecsim.KindCallRemoved:
				if c.Before != status {
					t.Fatalf("call %s released as %s, was %s", id, c.Before, status)
				}
				status = ""
			}
		}
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestScriptedCallStatusReachesTheTruthAndCMS(t *testing.T) {
	sim := start(t, cecsim.Config{Agents: 5})
	base := sim.URL() + "/cecsim/"
	r := do(t, "POST", base+"script", nil, map[string]any{"action": "start_call", "work_no": 1002, "direction": "outbound"})
	id, _ := r.json(t)["call_id"].(string)
	if r.status != 200 || id == "" {
		t.Fatalf("start_call: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", base+"script", nil, map[string]any{"action": "set_call_status", "work_no": 1002, "call_id": id, "call_status": "talking"}); r.status != 200 {
		t.Fatalf("set_call_status: %d %s", r.status, r.body)
	}
	for _, bad := range []map[string]any{
		{"action": "set_call_status", "work_no": 1002, "call_id": id, "call_status": "ringing"},
		{"action": "start_call", "work_no": 1002, "direction": "sideways"},
	} {
		if r := do(t, "POST", base+"script", nil, bad); r.status != 409 {
			t.Errorf("%v: HTTP %d", bad, r.status)
		}
	}
	if r := do(t, "POST", base+"script", nil, map[string]any{"action": "set_call_status", "work_no": 1003, "call_id": id, "call_status": "held"}); r.status != 404 {
		t.Errorf("another agent's call: HTTP %d", r.status)
	}
	got := truthCalls(t, sim)[id]
	if len(got) != 2 || got[0].After != "alerting" || got[0].Direction != "outbound" ||
		got[1].Kind != cecsim.KindCallStatus || got[1].Before != "alerting" || got[1].After != "talking" {
		t.Fatalf("truth %+v", got)
	}
	info, _ := sim.Agent(1002)
	if info.State != 5 || len(info.CallDetails) != 1 || info.CallDetails[0] != (cecsim.CallDetail{ID: id, Status: "talking", Direction: "outbound"}) {
		t.Fatalf("agent %+v", info)
	}
	r = cms(t, sim, "agentgroup/queryagentcalls", map[string]any{"ccId": 1, "vdn": 1, "agentIds": []int{1002, 1003}})
	var answer struct {
		ResultDesc []struct {
			AgentID  int `json:"agentId"`
			CallList []struct {
				CallID     string `json:"callId"`
				CallStatus int    `json:"callStatus"`
				CallInOut  int    `json:"callInOut"`
			} `json:"callList"`
		} `json:"resultDesc"`
	}
	if err := json.Unmarshal(r.body, &answer); err != nil {
		t.Fatal(err)
	}
	// Answers come in descending agent order, not the request's.
	d := answer.ResultDesc
	if len(d) != 2 || d[0].AgentID != 1003 || len(d[0].CallList) != 0 || d[1].AgentID != 1002 ||
		len(d[1].CallList) != 1 || d[1].CallList[0].CallID != id || d[1].CallList[0].CallStatus != 5 || d[1].CallList[0].CallInOut != 1 {
		t.Fatalf("answer %s", r.body)
	}
}

func TestControlAPISwitchesCMSLagAndLicence(t *testing.T) {
	sim := start(t, cecsim.Config{Agents: 5})
	base := sim.URL() + "/cecsim/cms"
	if r := do(t, "POST", base, nil, map[string]any{"lag": "2s", "licensed": false}); r.status != 200 ||
		r.json(t)["lag"] != "2s" || r.json(t)["licensed"] != false {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	if sim.CMSLag() != 2*time.Second || sim.CMSLicensed() {
		t.Fatalf("lag %s licensed %v", sim.CMSLag(), sim.CMSLicensed())
	}
	if got := resultCode(t, cms(t, sim, "vdn/totalagentstate", map[string]any{"ccId": 1, "vdn": 1})); got != "0100003" {
		t.Fatalf("unlicensed: %s", got)
	}
	// A POST changes only what it names.
	if r := do(t, "POST", base, nil, map[string]any{"licensed": true}); r.json(t)["lag"] != "2s" || r.json(t)["licensed"] != true {
		t.Fatalf("licence back: %s", r.body)
	}
	if r := do(t, "POST", base, nil, map[string]any{"lag": "soon"}); r.status != 400 {
		t.Errorf("bad lag: HTTP %d", r.status)
	}
	if r := do(t, "GET", base, nil, nil); r.json(t)["lag"] != "2s" {
		t.Errorf("GET: %s", r.body)
	}
}

// A CMS refusing the client answers HTTP 403 to every call, a correctly
// signed one too, before it looks at the signature; the control API
// switches the refusal while running.
func TestCMSRefusingTheClientAnswers403ToEveryCall(t *testing.T) {
	sim := start(t, cecsim.Config{Agents: 5, CMS: cecsim.CMS{RefuseClient: true}})
	body := map[string]any{"ccId": 1, "vdn": 1, "agentIds": []int{1001}}
	paths := []string{"agentgroup/queryagentcalls", "agentgroup/agentstatusinfobyagentids", "vdn/totalagentstate"}
	for _, path := range paths {
		if r := cms(t, sim, path, body); r.status != 403 {
			t.Errorf("%s: HTTP %d, want 403: %s", path, r.status, r.body)
		}
	}
	unsigned := do(t, "POST", sim.URL()+"/rest/cmsapp/v1/openapi/vdn/totalagentstate", nil, `{"ccId":1,"vdn":1}`)
	if unsigned.status != 403 {
		t.Errorf("unsigned: HTTP %d, want 403 before the signature check", unsigned.status)
	}
	base := sim.URL() + "/cecsim/cms"
	if r := do(t, "GET", base, nil, nil); r.json(t)["client_refused"] != true {
		t.Fatalf("GET: %s", r.body)
	}
	if r := do(t, "POST", base, nil, map[string]any{"client_refused": false}); r.status != 200 || r.json(t)["client_refused"] != false {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	if sim.CMSClientRefused() {
		t.Fatal("still refusing the client")
	}
	for _, path := range paths {
		if got := resultCode(t, cms(t, sim, path, body)); got != "0100000" {
			t.Errorf("%s once the client is let in: %s", path, got)
		}
	}
	sim.SetCMSClientRefused(true)
	if r := cms(t, sim, paths[0], body); r.status != 403 {
		t.Errorf("refused again: HTTP %d", r.status)
	}
}

func TestCMSFaultsComeThroughTheControlAPI(t *testing.T) {
	sim := start(t, cecsim.Config{Agents: 5})
	body := map[string]any{"ccId": 1, "vdn": 1, "agentIds": []int{1001}}
	for _, f := range []map[string]any{
		{"endpoint": "queryagentcalls", "kind": "vendor_code", "code": "0100001", "count": 1},
		{"endpoint": "agentstatusinfobyagentids", "kind": "http_status", "status": 503, "count": 1},
		{"endpoint": "totalagentstate", "kind": "throttle", "count": 1},
	} {
		if r := do(t, "POST", sim.URL()+"/cecsim/faults", nil, f); r.status != 200 {
			t.Fatalf("inject %v: %d", f, r.status)
		}
	}
	if got := resultCode(t, cms(t, sim, "agentgroup/queryagentcalls", body)); got != "0100001" {
		t.Errorf("vendor code fault: %s", got)
	}
	if r := cms(t, sim, "agentgroup/agentstatusinfobyagentids", body); r.status != 503 {
		t.Errorf("status fault: HTTP %d", r.status)
	}
	if r := cms(t, sim, "vdn/totalagentstate", body); r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Errorf("throttle fault: HTTP %d", r.status)
	}
	if got := resultCode(t, cms(t, sim, "agentgroup/queryagentcalls", body)); got != "0100000" {
		t.Errorf("after the faults: %s", got)
	}
	if n := sim.Counters()["queryagentcalls"]; n != 2 {
		t.Errorf("counted %d queryagentcalls, want 2", n)
	}
}

// The CMS view follows roster changes: a new agent is known, a removed one
// is left out of answers.
func TestCMSFollowsTheRoster(t *testing.T) {
	sim := start(t, cecsim.Config{Agents: 5})
	if err := sim.AddAgent(2000); err != nil {
		t.Fatal(err)
	}
	if err := sim.RemoveAgent(1001); err != nil {
		t.Fatal(err)
	}
	r := cms(t, sim, "agentgroup/agentstatusinfobyagentids", map[string]any{"ccId": 1, "vdn": 1, "agentIds": []int{1001, 1002, 2000}})
	var answer struct {
		ResultDesc []struct {
			AgentID      int   `json:"agentId"`
			CurrentState int   `json:"currentState"`
			LogonTime    int64 `json:"logonTime"`
		} `json:"resultDesc"`
	}
	if err := json.Unmarshal(r.body, &answer); err != nil {
		t.Fatal(err)
	}
	d := answer.ResultDesc
	if len(d) != 2 || d[0].AgentID != 2000 || d[0].CurrentState != 0 || d[0].LogonTime != 4294967295000 ||
		d[1].AgentID != 1002 || d[1].CurrentState != 1 {
		t.Fatalf("answer %s", r.body)
	}
}

// signedWith sends a totalagentstate request signed over headers with
// timestamps of precision p, and returns the HTTP status.
func signedWith(t *testing.T, sim *cecsim.Sim, headers []string, p cec.TimestampPrecision) int {
	t.Helper()
	raw := []byte(`{"ccId":1,"vdn":1}`)
	signer, err := cec.NewC2Signer("cms-ak", "cms-sk", headers, p)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(sim.URL() + "/rest/cmsapp/v1/openapi/vdn/totalagentstate")
	auth := signer.Sign("POST", u.EscapedPath(), "", map[string]string{
		"host": u.Host, "content-type": "application/json", "content-length": strconv.Itoa(len(raw)),
	}, raw, time.Now())
	return do(t, "POST", u.String(), map[string]string{"Authorization": auth, "Content-Type": "application/json"}, string(raw)).status
}

// With a signing variant set, CMS accepts that variant only; with
// RefuseSignatures it accepts none; by default any variant that signs host.
func TestCMSSigningVariantSwitches(t *testing.T) {
	all := []string{"content-length", "content-type", "host"}
	type variant struct {
		headers []string
		p       cec.TimestampPrecision
	}
	variants := []variant{{[]string{"host"}, cec.TimestampSeconds}, {[]string{"host"}, cec.TimestampMillis},
		{all, cec.TimestampSeconds}, {all, cec.TimestampMillis}}
	for _, tt := range []struct {
		name     string
		cms      cecsim.CMS
		accepted []bool // per variant
	}{
		{"any variant", cecsim.CMS{}, []bool{true, true, true, true}},
		{"every header, milliseconds", cecsim.CMS{SignedHeaders: all, Timestamp: cecsim.C2Millis}, []bool{false, false, false, true}},
		{"host, any precision", cecsim.CMS{SignedHeaders: []string{"host"}}, []bool{true, true, false, false}},
		{"refuse every signature", cecsim.CMS{RefuseSignatures: true}, []bool{false, false, false, false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sim := start(t, cecsim.Config{Agents: 4, CMS: tt.cms})
			for i, v := range variants {
				want := 200
				if !tt.accepted[i] {
					want = 401
				}
				if got := signedWith(t, sim, v.headers, v.p); got != want {
					t.Errorf("%v signed, precision %v: HTTP %d, want %d", v.headers, v.p, got, want)
				}
			}
		})
	}
	if _, err := cecsim.New(cecsim.Config{CMS: cecsim.CMS{Timestamp: "minutes", SignedHeaders: []string{"content-type"}}}); err == nil ||
		!strings.Contains(err.Error(), "CMS.Timestamp") || !strings.Contains(err.Error(), "CMS.SignedHeaders") {
		t.Errorf("bad variant accepted: %v", err)
	}
}
