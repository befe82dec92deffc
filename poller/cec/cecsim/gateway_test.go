package cecsim_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

func TestLoginAlreadySignedInThenForcelogin(t *testing.T) {
	sim := start(t, cecsim.Config{AuthMode: cecsim.AuthStatic})
	g1, m := login(t, sim, "1001", false)
	res := m["result"].(map[string]any)
	if res["workno"] != "1001" || res["mediatype"] != "TTF" || res["loginTime"] == "" || res["vdnid"] != float64(1) {
		t.Errorf("login result %v", res)
	}
	if _, m := login(t, sim, "1001", false); m["retcode"] != "100-002" {
		t.Fatalf("second login: %v, want 100-002", m)
	}
	g2, m := login(t, sim, "1001", true)
	if m["retcode"] != "0" || g2 == g1 {
		t.Fatalf("forcelogin: %v", m)
	}
	if c := retcode(t, gw(t, sim, "GET", "onlineagent/1001/agentstatus", g1)); c != "000-003" {
		t.Errorf("old GUID after forcelogin: %s, want 000-003", c)
	}
	r := gw(t, sim, "GET", "onlineagent/1001/agentstatus", "JSESSIONID="+g2)
	st := r.json(t)["result"].(map[string]any)
	if retcode(t, r) != "0" || st["agentState"] != float64(4) || st["isWorking"] != false {
		t.Errorf("agentstatus with prefixed GUID: %s", r.body)
	}
	// Wrong password and unknown agents.
	r = do(t, "PUT", sim.URL()+gwBase+"onlineagent/1002", nil, map[string]any{"password": "nope", "phonenum": "1"})
	if retcode(t, r) != "100-004" {
		t.Errorf("wrong password: %s", r.body)
	}
	r = do(t, "PUT", sim.URL()+gwBase+"onlineagent/9999", nil, map[string]any{"password": "agent-pass"})
	if retcode(t, r) != "100-004" {
		t.Errorf("unknown agent: %s", r.body)
	}
	r = do(t, "PUT", sim.URL()+gwBase+"onlineagent/1002", nil, map[string]any{"password": "agent-pass", "status": "9"})
	if retcode(t, r) != "100-011" {
		t.Errorf("bad status: %s", r.body)
	}
	// Logout, then the GUID is dead with 100-006 and login works again.
	if c := retcode(t, gw(t, sim, "DELETE", "onlineagent/1001/logout", g2)); c != "0" {
		t.Fatalf("logout: %s", c)
	}
	if c := retcode(t, gw(t, sim, "GET", "agentevent/1001", g2)); c != "100-006" {
		t.Errorf("poll after logout: %s, want 100-006", c)
	}
	if g, m := login(t, sim, "1001", false); g == "" {
		t.Errorf("login after logout: %v", m)
	}
}

func TestLogoutRefusedWhileTalking(t *testing.T) {
	sim := start(t, cecsim.Config{AuthMode: cecsim.AuthStatic})
	g, _ := login(t, sim, "1003", false)
	id, err := sim.StartCall(1003)
	if err != nil {
		t.Fatal(err)
	}
	if c := retcode(t, gw(t, sim, "DELETE", "onlineagent/1003/logout", g)); c != "100-010" {
		t.Fatalf("logout while talking: %s", c)
	}
	if err := sim.EndCall(1003, id); err != nil {
		t.Fatal(err)
	}
	if c := retcode(t, gw(t, sim, "DELETE", "onlineagent/1003/logout", g)); c != "0" {
		t.Fatalf("logout after the call: %s", c)
	}
}

type polled struct {
	Retcode string
	Event   json.RawMessage
	hasKey  bool
	setGUID string
}

func poll(t testing.TB, sim *cecsim.Sim, id, guid string) polled {
	t.Helper()
	r := gw(t, sim, "GET", "agentevent/"+id, guid)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatalf("poll body %q: %v", r.body, err)
	}
	var p polled
	_ = json.Unmarshal(raw["retcode"], &p.Retcode)
	p.Event, p.hasKey = raw["event"]
	p.setGUID, _ = strings.CutPrefix(r.header.Get("Set-GUID"), "JSESSIONID=")
	return p
}

func eventType(t testing.TB, p polled) string {
	t.Helper()
	var e struct {
		EventType string `json:"eventType"`
		WorkNo    string `json:"workNo"`
	}
	if err := json.Unmarshal(p.Event, &e); err != nil {
		t.Fatalf("event %s: %v", p.Event, err)
	}
	return e.EventType
}

func TestLongPollImmediateHoldAndWake(t *testing.T) {
	const hold = 300 * time.Millisecond
	sim := start(t, cecsim.Config{AuthMode: cecsim.AuthStatic, LongPollHold: hold})
	g, _ := login(t, sim, "1001", false)
	// Sign-in queued two events; each poll returns one at once.
	var got []string
	for range 2 {
		p := poll(t, sim, "1001", g)
		got = append(got, eventType(t, p))
	}
	if !slices.Equal(got, []string{"AgentOther_InService", "AgentState_Ready"}) {
		t.Fatalf("sign-in events %v", got)
	}
	// Nothing queued: the poll is held for LongPollHold, then empty.
	begin := time.Now()
	p := poll(t, sim, "1001", g)
	if p.Retcode != "0" || p.hasKey {
		t.Fatalf("empty poll: %+v", p)
	}
	if d := time.Since(begin); d < hold {
		t.Errorf("empty poll answered after %v, before the %v hold", d, hold)
	}
	// An event arriving during the hold ends it with that event.
	done := make(chan polled, 1)
	go func() { done <- poll(t, sim, "1001", g) }()
	testwait.For(t, 5*time.Second, "the call to start", func() bool {
		_, err := sim.StartCall(1001)
		return err == nil
	})
	p = <-done
	if p.Retcode != "0" {
		t.Fatalf("woken poll %+v", p)
	}
	// The poll may have been answered empty if the call landed just as the
	// hold ended; then the event is the next one.
	if !p.hasKey {
		p = poll(t, sim, "1001", g)
	}
	if et := eventType(t, p); et != "AgentEvent_Talking" {
		t.Errorf("event %s, want AgentEvent_Talking", et)
	}
}

func TestEmptyPollModes(t *testing.T) {
	for _, tc := range []struct {
		mode cecsim.EmptyPollMode
		want string // raw event, "" = absent
	}{
		{cecsim.EmptyPollAbsent, ""},
		{cecsim.EmptyPollNull, "null"},
		{cecsim.EmptyPollEmptyObject, "{}"},
	} {
		sim := start(t, cecsim.Config{AuthMode: cecsim.AuthStatic, EmptyPollMode: tc.mode, LongPollHold: 10 * time.Millisecond})
		g, _ := login(t, sim, "1001", false)
		poll(t, sim, "1001", g)
		poll(t, sim, "1001", g)
		p := poll(t, sim, "1001", g)
		if string(p.Event) != tc.want || p.hasKey != (tc.want != "") {
			t.Errorf("mode %d: event %q (present %v), want %q", tc.mode, p.Event, p.hasKey, tc.want)
		}
	}
}

func TestStaticGUIDNeverRotates(t *testing.T) {
	sim := start(t, cecsim.Config{AuthMode: cecsim.AuthStatic, GUIDInterval: time.Millisecond, GUIDTimeout: 2 * time.Millisecond, LongPollHold: 5 * time.Millisecond})
	g, _ := login(t, sim, "1001", false)
	for range 10 {
		if p := poll(t, sim, "1001", g); p.Retcode != "0" || p.setGUID != "" {
			t.Fatalf("static poll: %+v", p)
		}
	}
	// updateGuid replaces it; in static mode the old one dies at once.
	r := gw(t, sim, "PUT", "onlineagent/1001/updateGuid", g)
	ng, _ := r.json(t)["result"].(map[string]any)["guid"].(string)
	if ng == "" || ng == g || r.header.Get("Set-GUID") != "JSESSIONID="+ng {
		t.Fatalf("updateGuid: %s %v", r.body, r.header)
	}
	if p := poll(t, sim, "1001", g); p.Retcode != "000-003" {
		t.Errorf("old GUID after updateGuid: %s", p.Retcode)
	}
	if p := poll(t, sim, "1001", ng); p.Retcode != "0" {
		t.Errorf("new GUID: %s", p.Retcode)
	}
}

func TestDynamicGUIDRotationAndGrace(t *testing.T) {
	sim := start(t, cecsim.Config{
		AuthMode: cecsim.AuthDynamic, GUIDInterval: 100 * time.Millisecond, GUIDTimeout: 400 * time.Millisecond,
		LongPollHold: 10 * time.Millisecond,
	})
	g0, _ := login(t, sim, "1001", false)
	var g1 string
	testwait.For(t, 5*time.Second, "a rotated GUID on a poll", func() bool {
		p := poll(t, sim, "1001", g0)
		if p.Retcode != "0" {
			t.Fatalf("poll with the sign-in GUID: %s", p.Retcode)
		}
		g1 = p.setGUID
		return g1 != ""
	})
	if g1 == g0 || !strings.HasSuffix(g1, ".AgentGateway0") {
		t.Fatalf("rotated GUID %q", g1)
	}
	// Other calls accept the new GUID; the previous one keeps working for a
	// while and, used on a poll, is answered with the current one again.
	if c := retcode(t, gw(t, sim, "GET", "calldata/1001/allcallinfoEx/1002", g1)); c != "0" {
		t.Errorf("new GUID on allcallinfoEx: %s", c)
	}
	// Eventually the superseded GUID lapses (grace over or another rotation).
	testwait.For(t, 5*time.Second, "the superseded GUID to lapse", func() bool {
		return retcode(t, gw(t, sim, "GET", "onlineagent/1001/agentstatus", g0)) == "000-003"
	})
	// The session itself lives on with whatever GUID polls hand out.
	cur := g1
	for range 20 {
		p := poll(t, sim, "1001", cur)
		if p.Retcode != "0" {
			t.Fatalf("poll with current GUID: %s", p.Retcode)
		}
		if p.setGUID != "" {
			cur = p.setGUID
		}
	}
}

func TestReapAfterNoPollTimeout(t *testing.T) {
	sim := start(t, cecsim.Config{AuthMode: cecsim.AuthStatic, NoPollTimeout: 200 * time.Millisecond})
	g, _ := login(t, sim, "1001", false)
	if !sim.SessionSignedIn(1001) {
		t.Fatal("session not signed in after login")
	}
	testwait.For(t, 5*time.Second, "the idle session to be reaped", func() bool { return !sim.SessionSignedIn(1001) })
	if p := poll(t, sim, "1001", g); p.Retcode != "100-006" {
		t.Errorf("poll after reaping: %s, want 100-006", p.Retcode)
	}
	if g2, m := login(t, sim, "1001", false); g2 == "" {
		t.Errorf("login after reaping: %v", m)
	}
}

func TestKickOutAndInvalidateGUID(t *testing.T) {
	sim := start(t, cecsim.Config{AuthMode: cecsim.AuthStatic})
	g, _ := login(t, sim, "1001", false)
	sim.InvalidateGUID(1001)
	if p := poll(t, sim, "1001", g); p.Retcode != "000-003" {
		t.Errorf("after InvalidateGUID: %s", p.Retcode)
	}
	if _, m := login(t, sim, "1001", false); m["retcode"] != "100-002" {
		t.Errorf("session should still be signed in: %v", m)
	}
	g, _ = login(t, sim, "1001", true)
	sim.KickOut(1001)
	if p := poll(t, sim, "1001", g); p.Retcode != "100-006" {
		t.Errorf("after KickOut: %s", p.Retcode)
	}
	if p := poll(t, sim, "1002", "whatever"); p.Retcode != "100-006" {
		t.Errorf("never signed in: %s", p.Retcode)
	}
}

func TestAllCallInfoExSameVDNAndNoCallModes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   cecsim.NoCallMode
		code   string
		result string // raw result; "" = absent
	}{
		{"empty", cecsim.NoCallEmpty, "0", "[]"},
		{"omit", cecsim.NoCallOmit, "0", ""},
		{"error", cecsim.NoCallError, "900-002", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := start(t, cecsim.Config{AuthMode: cecsim.AuthStatic, AgentsPerVDN: 10, NoCallMode: tc.mode})
			g, _ := login(t, sim, "1001", false)
			get := func(path string) (string, json.RawMessage, bool) {
				var m map[string]json.RawMessage
				if err := json.Unmarshal(gw(t, sim, "GET", path, g).body, &m); err != nil {
					t.Fatal(err)
				}
				var c string
				_ = json.Unmarshal(m["retcode"], &c)
				res, ok := m["result"]
				return c, res, ok
			}
			c, res, ok := get("calldata/1001/allcallinfoEx/1005")
			if c != tc.code || string(res) != tc.result || ok != (tc.result != "") {
				t.Errorf("no call: %s %s %v", c, res, ok)
			}
			if c, _, _ := get("calldata/1001/allcallinfoEx/1015"); c != "000-002" {
				t.Errorf("other VDN: %s, want 000-002", c)
			}
			if c, _, _ := get("calldata/1001/allcallinfoEx/abc"); c != "000-002" {
				t.Errorf("bad workno: %s", c)
			}
			id1, _ := sim.StartCall(1005)
			id2, _ := sim.StartCall(1005)
			c, res, _ = get("calldata/1001/allcallinfoEx/1005")
			var ids []string
			if err := json.Unmarshal(res, &ids); err != nil || c != "0" {
				t.Fatalf("with calls: %s %s", c, res)
			}
			slices.Sort(ids)
			if want := sim.AgentCalls(1005); !slices.Equal(ids, want) || len(ids) != 2 || !slices.Contains(ids, id1) || !slices.Contains(ids, id2) {
				t.Errorf("calls %v, truth %v", ids, want)
			}
			for _, id := range ids {
				if !strings.Contains(id, "-") {
					t.Errorf("call id %q not <unix>-<n>", id)
				}
			}
			c, res, _ = get("calldata/1001/callinfobycallid/" + id1)
			var info map[string]any
			_ = json.Unmarshal(res, &info)
			if c != "0" || info["callid"] != id1 {
				t.Errorf("callinfobycallid: %s %s", c, res)
			}
			if c, _, _ := get("calldata/1001/callinfobycallid/1-1"); c != "000-002" {
				t.Errorf("unknown call: %s", c)
			}
		})
	}
}
