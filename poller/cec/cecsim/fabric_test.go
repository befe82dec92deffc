package cecsim_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

func TestTokenIssueAndShape(t *testing.T) {
	sim := start(t, cecsim.Config{})
	url := sim.URL() + "/apigovernance/api/oauth/tokenByAkSk"
	for _, tc := range []struct {
		name, hdr, want string
	}{
		{"default lifetime", "", "600"},
		{"requested", "900", "900"},
		{"capped at max", "99999", "3600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.hdr != "" {
				hdr["X-Token-Expire"] = tc.hdr
			}
			r := do(t, "POST", url, hdr, map[string]string{"app_key": "app-key", "app_secret": "app-secret"})
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			m := r.json(t)
			for _, k := range []string{"AccessToken", "ApplyType", "CreateTime", "Expires", "Scope", "AppKey", "UserID"} {
				if _, ok := m[k].(string); !ok {
					t.Errorf("%s is not a string: %#v", k, m[k])
				}
			}
			if m["Expires"] != tc.want || m["ApplyType"] != "Bearer" || m["UserID"] != "Anonymous" || m["AppKey"] != "app-key" {
				t.Errorf("unexpected body %s", r.body)
			}
		})
	}
	r := do(t, "POST", url, nil, map[string]string{"app_key": "app-key", "app_secret": "wrong"})
	if r.status != 401 {
		t.Fatalf("bad secret: status %d, want 401", r.status)
	}
	if strings.Contains(string(r.body), "wrong") || strings.Contains(string(r.body), "app-secret") {
		t.Errorf("error body echoes a secret: %s", r.body)
	}
}

func TestTokenExpiryRevocationAndMissing(t *testing.T) {
	sim := start(t, cecsim.Config{ExpiredTokenStatus: 403, ExpiredTokenBody: `{"code":"expired"}`})
	q := sim.URL() + "/apiaccess/CC-Management/v1/queryAgentInfo"

	if r := do(t, "GET", q, nil, nil); r.status != 403 || string(r.body) != `{"code":"expired"}` {
		t.Fatalf("missing token: %d %s", r.status, r.body)
	}
	short := token(t, sim, "1")
	long := token(t, sim, "600")
	if r := do(t, "GET", q, bearer(short), nil); r.status != 200 {
		t.Fatalf("fresh token refused: %d", r.status)
	}
	testwait.For(t, 5*time.Second, "1 s token to expire", func() bool {
		return do(t, "GET", q, bearer(short), nil).status == 403
	})
	if r := do(t, "GET", q, bearer(long), nil); r.status != 200 {
		t.Fatalf("long token refused: %d", r.status)
	}
	sim.RevokeTokens()
	if r := do(t, "GET", q, bearer(long), nil); r.status != 403 {
		t.Fatalf("revoked token accepted: %d", r.status)
	}
	if r := do(t, "GET", q, bearer(token(t, sim, "")), nil); r.status != 200 {
		t.Fatalf("token issued after revocation refused: %d", r.status)
	}
}

func TestQueryAgentInfo(t *testing.T) {
	sim := start(t, cecsim.Config{Agents: 100})
	r := do(t, "GET", sim.URL()+"/apiaccess/CC-Management/v1/queryAgentInfo", bearer(token(t, sim, "")), nil)
	var body struct {
		SipServiceIP   string          `json:"sipServiceIp"`
		SipServicePort json.RawMessage `json:"sipServicePort"`
		Agents         []map[string]any
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.SipServiceIP == "" || string(body.SipServicePort) != "5060" {
		t.Errorf("sip server %q %s", body.SipServiceIP, body.SipServicePort)
	}
	if len(body.Agents) != 100 {
		t.Fatalf("%d agents, want 100", len(body.Agents))
	}
	without := 0
	for i, a := range body.Agents {
		wn, ok := a["workNo"].(float64)
		if !ok || int(wn) != 1001+i {
			t.Fatalf("agent %d: workNo %#v", i, a["workNo"])
		}
		if a["sipAccount"] != fmt.Sprintf("8888%d", 1001+i) || a["sipPwd"] == "" {
			t.Errorf("agent %v: %v", wn, a)
		}
		if ac, ok := a["accountCode"]; !ok {
			without++
		} else if ac != fmt.Sprintf("acct%d", 1001+i) {
			t.Errorf("agent %v: accountCode %v", wn, ac)
		}
		info, _ := sim.Agent(int(wn))
		if info.AccountCode == "" == (a["accountCode"] != nil) {
			t.Errorf("agent %v: truth and wire disagree on the account", wn)
		}
	}
	if without == 0 || without > 30 {
		t.Errorf("%d of 100 agents without accountCode, want about 10", without)
	}
}

func TestQueryPhoneClampAndPaging(t *testing.T) {
	sim := start(t, cecsim.Config{Agents: 250})
	tok := token(t, sim, "")
	url := sim.URL() + "/apiaccess/CC-Management/v2/mobileAgent/queryPhone"
	page := func(body any) (int, []map[string]any, map[string]any) {
		t.Helper()
		r := do(t, "POST", url, bearer(tok), body)
		m := r.json(t)
		if m["retCode"] != "0" {
			t.Fatalf("retCode %v: %s", m["retCode"], r.body)
		}
		res := m["result"].(map[string]any)
		var phones []map[string]any
		for _, p := range res["phone"].([]any) {
			phones = append(phones, p.(map[string]any))
		}
		return int(res["total"].(float64)), phones, res
	}
	for _, tc := range []struct {
		name string
		body any
		want int
	}{
		{"default", nil, 100},
		{"empty object", map[string]any{}, 100},
		{"over max", map[string]any{"limit": 500}, 100},
		{"zero", map[string]any{"limit": 0}, 1},
		{"negative", map[string]any{"limit": "-3"}, 1},
		{"string", map[string]any{"limit": "3", "offset": "2"}, 3},
		{"past the end", map[string]any{"limit": 10, "offset": 245}, 5},
		{"beyond", map[string]any{"offset": 1000}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total, phones, res := page(tc.body)
			if total != 250 || len(phones) != tc.want {
				t.Fatalf("total %d, %d phones; want 250, %d", total, len(phones), tc.want)
			}
			if _, ok := res["singleRegServ"].([]any); !ok {
				t.Errorf("no singleRegServ list: %v", res)
			}
		})
	}
	// Walking the pages yields exactly the simulator's phone list.
	truth := sim.Phones()
	var got []string
	for off := 0; ; off += 7 {
		_, phones, _ := page(map[string]any{"limit": 7, "offset": off})
		if len(phones) == 0 {
			break
		}
		for _, p := range phones {
			if p["password"] == "" || p["tenantId"] == nil || p["status"] != float64(0) {
				t.Fatalf("phone entry %v", p)
			}
			got = append(got, p["phoneNum"].(string))
		}
	}
	if len(got) != len(truth) {
		t.Fatalf("paged %d phones, truth has %d", len(got), len(truth))
	}
	for i := range got {
		if got[i] != truth[i].PhoneNum {
			t.Fatalf("page order differs at %d: %s vs %s", i, got[i], truth[i].PhoneNum)
		}
	}
	// A suspended phone shows status 1.
	if err := sim.SetPhoneStatus(truth[2].PhoneNum, 1); err != nil {
		t.Fatal(err)
	}
	if _, phones, _ := page(map[string]any{"limit": 1, "offset": 2}); phones[0]["status"] != float64(1) {
		t.Errorf("suspended phone reported %v", phones[0]["status"])
	}
}

func TestQueryPhoneFlatQuirk(t *testing.T) {
	sim := start(t, cecsim.Config{FlatRegServ: true})
	r := do(t, "POST", sim.URL()+"/apiaccess/CC-Management/v2/mobileAgent/queryPhone", bearer(token(t, sim, "")), map[string]any{"limit": 3})
	res := r.json(t)["result"].(map[string]any)
	if res["regIPAddress"] == nil || res["regPort"] == nil || res["singleRegServ"] != nil {
		t.Errorf("flat quirk not reproduced: %s", r.body)
	}
}

func TestQueryAgentInfoByAccount(t *testing.T) {
	sim := start(t, cecsim.Config{})
	tok := token(t, sim, "")
	url := sim.URL() + "/apiaccess/rest/CC-Management/v1/queryAgentInfoByAccount"
	var acct string
	var wn int
	for _, n := range sim.Agents() {
		if a, _ := sim.Agent(n); a.AccountCode != "" {
			acct, wn = a.AccountCode, n
			break
		}
	}
	m := do(t, "POST", url, bearer(tok), map[string]string{"accountCode": acct}).json(t)
	data := m["data"].(map[string]any)
	if m["returnCode"] != "0" || data["workNo"] != float64(wn) || data["agentType"] == nil || data["agentStatus"] == nil {
		t.Errorf("found: %v", m)
	}
	m = do(t, "POST", url, bearer(tok), map[string]string{"accountCode": "nobody"}).json(t)
	if m["returnCode"] != "1" || m["description"] == "" || m["data"].(map[string]any)["workNo"] != "" {
		t.Errorf("not found: %v", m)
	}
}

func TestLooseTypes(t *testing.T) {
	sim := start(t, cecsim.Config{LooseTypes: true, Agents: 200})
	r := do(t, "GET", sim.URL()+"/apiaccess/CC-Management/v1/queryAgentInfo", bearer(token(t, sim, "")), nil)
	var body struct{ Agents []map[string]any }
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	var strs, nums int
	for _, a := range body.Agents {
		switch a["workNo"].(type) {
		case string:
			strs++
		case float64:
			nums++
		}
	}
	if strs == 0 || nums == 0 {
		t.Errorf("loose types: %d string and %d number workNos, want both", strs, nums)
	}
}

// A refused token's answer is typed by its body: JSON, text, or none at all.
func TestRefusedTokenBodyShapes(t *testing.T) {
	for _, tt := range []struct {
		name     string
		cfg      cecsim.Config
		body, ct string
	}{
		{"default JSON", cecsim.Config{}, `{"error":"token expired"}`, "application/json;charset=UTF-8"},
		{"text", cecsim.Config{ExpiredTokenBody: "Unauthorized"}, "Unauthorized", "text/plain;charset=UTF-8"},
		{"none", cecsim.Config{ExpiredTokenBody: "ignored", ExpiredTokenNoBody: true}, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sim := start(t, tt.cfg)
			r := do(t, "GET", sim.URL()+"/apiaccess/CC-Management/v1/queryAgentInfo", bearer("made-up"), nil)
			if r.status != 401 || string(r.body) != tt.body || r.header.Get("Content-Type") != tt.ct {
				t.Errorf("HTTP %d, Content-Type %q, body %q; want 401, %q, %q", r.status, r.header.Get("Content-Type"), r.body, tt.ct, tt.body)
			}
		})
	}
}
