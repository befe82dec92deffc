package cecsim_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

func TestControlAPI(t *testing.T) {
	sim := start(t, cecsim.Config{AuthMode: cecsim.AuthStatic})
	base := sim.URL() + "/cecsim/"
	r := do(t, "POST", base+"script", nil, map[string]any{"action": "start_call", "work_no": 1010})
	callID, _ := r.json(t)["call_id"].(string)
	if r.status != 200 || callID == "" {
		t.Fatalf("start_call: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", base+"script", nil, map[string]any{"action": "end_call", "work_no": 1010, "call_id": "nope"}); r.status != 404 {
		t.Errorf("end unknown call: %d", r.status)
	}
	for _, a := range []map[string]any{
		{"action": "set_softphone", "work_no": 1011, "sip_account": "777", "account_code": "x1"},
		{"action": "set_phone_status", "phone_num": "777", "status": 1},
		{"action": "add_agent", "work_no": 5000},
		{"action": "remove_agent", "work_no": 1012},
		{"action": "sign_out", "work_no": 1013},
		{"action": "end_call", "work_no": 1010, "call_id": callID},
	} {
		if r := do(t, "POST", base+"script", nil, a); r.status != 200 {
			t.Fatalf("%v: %d %s", a, r.status, r.body)
		}
	}
	r = do(t, "GET", base+"truth?since=0", nil, nil)
	var kinds []string
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		var c cecsim.Change
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		if c.Seq != uint64(len(kinds)+1) {
			t.Fatalf("seq %d at position %d", c.Seq, len(kinds))
		}
		kinds = append(kinds, c.Kind)
	}
	want := []string{"call_added", "phone_added", "softphone", "phone_status", "agent_added", "phone_added",
		"signed_out", "agent_removed", "phone_removed", "signed_out", "call_removed"}
	if len(kinds) != len(want) {
		t.Fatalf("truth kinds %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("truth kinds %v, want %v", kinds, want)
		}
	}
	if got := do(t, "GET", base+"truth?since=9", nil, nil); bytes.Count(got.body, []byte("\n")) != 2 {
		t.Errorf("since=9: %s", got.body)
	}
	var info cecsim.AgentInfo
	if err := json.Unmarshal(do(t, "GET", base+"agents/1011", nil, nil).body, &info); err != nil || info.SIPAccount != "777" || info.AccountCode != "x1" {
		t.Errorf("agent 1011: %+v %v", info, err)
	}
	if r := do(t, "GET", base+"agents/1012", nil, nil); r.status != 404 {
		t.Errorf("removed agent: %d", r.status)
	}
	if r := do(t, "POST", base+"faults", nil, map[string]any{"endpoint": "agentstatus", "kind": "latency", "latency": "1ms", "count": 1}); r.status != 200 || r.json(t)["id"] == nil {
		t.Errorf("inject: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", base+"faults", nil, map[string]any{"kind": "nonsense"}); r.status != 400 {
		t.Errorf("bad fault kind: %d", r.status)
	}
	if r := do(t, "DELETE", base+"faults", nil, nil); r.status != 200 {
		t.Errorf("clear faults: %d", r.status)
	}
	g, _ := login(t, sim, "1001", false)
	do(t, "POST", base+"invalidate-guid/1001", nil, nil)
	if c := retcode(t, gw(t, sim, "GET", "onlineagent/1001/agentstatus", g)); c != "000-003" {
		t.Errorf("after invalidate-guid: %s", c)
	}
	g, _ = login(t, sim, "1001", true)
	do(t, "POST", base+"kick/1001", nil, nil)
	if c := retcode(t, gw(t, sim, "GET", "onlineagent/1001/agentstatus", g)); c != "100-006" {
		t.Errorf("after kick: %s", c)
	}
	tok := token(t, sim, "")
	do(t, "POST", base+"revoke-tokens", nil, nil)
	if r := do(t, "GET", sim.URL()+"/apiaccess/CC-Management/v1/queryAgentInfo", bearer(tok), nil); r.status != 401 {
		t.Errorf("after revoke-tokens: %d", r.status)
	}
	var counters map[string]int64
	if err := json.Unmarshal(do(t, "GET", base+"counters", nil, nil).body, &counters); err != nil {
		t.Fatal(err)
	}
	if counters["login"] != 1 || counters["forcelogin"] != 1 || counters["agentstatus"] != 2 || counters["token"] != 1 || counters["queryAgentInfo"] != 1 {
		t.Errorf("counters %v", counters)
	}
}
