package cec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeTokenFixture(t *testing.T) {
	tok, life, err := decodeToken(fixture(t, "token.json"))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "1b2c3d4e-token-fixture" || life != 600*time.Second {
		t.Fatalf("got %q %v", tok, life)
	}
	for _, bad := range []string{`null`, `{}`, `{"AccessToken":""}`, `[]`, `{"AccessToken":`} {
		if _, _, err := decodeToken([]byte(bad)); err == nil {
			t.Errorf("%s: want error", bad)
		}
	}
}

func TestDecodeAgentInfoFixture(t *testing.T) {
	got, err := decodeAgentInfo(fixture(t, "query_agent_info.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := &AgentInfo{SIPServerIP: "10.10.96.98", SIPServerPort: 5060, Agents: []AgentSoftphone{
		{WorkNo: 1522, SIPAccount: "88881619", SIPPassword: "***", AccountCode: "aaaa"},
		{WorkNo: 1523, SIPAccount: "88881620", SIPPassword: "***"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestDecodeAgentInfoLoose(t *testing.T) {
	got, err := decodeAgentInfo([]byte(`{"sipServiceIp":"1.2.3.4","sipServicePort":"5061","agents":[{"workNo":"1001","sipAccount":88881001,"sipPwd":"x"},{"workNo":""}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.SIPServerPort != 5061 || len(got.Agents) != 1 || got.Agents[0].WorkNo != 1001 || got.Agents[0].SIPAccount != "88881001" {
		t.Fatalf("got %+v", got)
	}
	// A body without the agents list must not read as "no agents".
	for _, bad := range []string{`{}`, `{"sipServiceIp":"1.2.3.4"}`, `null`, `{"agents":null}`, `{"agents":[{"workNo":"12a"}]}`} {
		if _, err := decodeAgentInfo([]byte(bad)); err == nil {
			t.Errorf("%s: want error", bad)
		}
	}
	var ce *codeError
	if _, err := decodeAgentInfo([]byte(`{"retCode":"1","retMsg":"failed"}`)); !errors.As(err, &ce) || ce.code != "1" {
		t.Errorf("want codeError, got %v", err)
	}
}

func TestDecodePhonePageFixture(t *testing.T) {
	got, err := decodePhonePage(fixture(t, "query_phone.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := &PhonePage{Total: 2,
		Phones:     []Phone{{PhoneNum: "88881196", Password: "****"}, {PhoneNum: "88881197", Password: "****"}},
		RegServers: []RegServer{{RegIP: "10.162.98.43", RegPort: 5060}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestDecodePhonePageNested(t *testing.T) {
	body := `{"retCode":"0","result":{"total":"3","singleRegServ":[{"regIPAddress":"1.1.1.1","regPort":5060,"sipServicePort":"5060","sipServiceIp":"2.2.2.2"}],
	"poolRegServ":{"node1":[{"regIPAddress":"3.3.3.3","regPort":"5070"}],"node2":[]},
	"phone":[{"phoneNum":"1","password":"p","id":"7","status":"1","remark":"r","tenantId":"t","partdbId":"d"}]}}`
	got, err := decodePhonePage([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got.Total != 3 || len(got.RegServers) != 2 || got.RegServers[0] != (RegServer{Pool: "single", RegIP: "1.1.1.1", RegPort: 5060, SIPServiceIP: "2.2.2.2", SIPServicePort: 5060}) ||
		got.RegServers[1].Pool != "node1" || got.RegServers[1].RegPort != 5070 {
		t.Fatalf("reg servers %+v", got.RegServers)
	}
	if got.Phones[0] != (Phone{PhoneNum: "1", Password: "p", ID: 7, Status: 1, Remark: "r", TenantID: "t", PartDBID: "d"}) {
		t.Fatalf("phone %+v", got.Phones[0])
	}
	var ce *codeError
	if _, err := decodePhonePage([]byte(`{"retCode":"4","retMsg":"limit empty"}`)); !errors.As(err, &ce) || ce.code != "4" {
		t.Errorf("want codeError 4, got %v", err)
	}
	for _, bad := range []string{`{"retCode":"0"}`, `{"result":{"total":1}}`, `{"retCode":"0","result":{"phone":[]}}`} {
		if _, err := decodePhonePage([]byte(bad)); err == nil || errors.As(err, &ce) {
			t.Errorf("%s: want shape error, got %v", bad, err)
		}
	}
}

func TestDecodeAgentAccountFixture(t *testing.T) {
	got, err := decodeAgentAccount(fixture(t, "query_agent_by_account.json"))
	if err != nil {
		t.Fatal(err)
	}
	if *got != (AgentAccount{WorkNo: 7094, AgentType: 5, AgentStatus: "0"}) {
		t.Fatalf("got %+v", got)
	}
	for _, nf := range []string{`{"returnCode":"1","description":"x","data":{"workNo":""}}`, `{"returnCode":"0","data":{"workNo":""}}`, `{"returnCode":"1"}`} {
		var ce *codeError
		if _, err := decodeAgentAccount([]byte(nf)); !errors.As(err, &ce) || !ce.notFound {
			t.Errorf("%s: want not found, got %v", nf, err)
		}
	}
	var ce *codeError
	if _, err := decodeAgentAccount([]byte(`{"returnCode":"1","data":{"workNo":"12"}}`)); !errors.As(err, &ce) || ce.notFound {
		t.Errorf("want vendor failure, got %v", err)
	}
}

func TestDecodeCallIDs(t *testing.T) {
	env, err := decodeGateway(fixture(t, "allcallinfoex.json"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := decodeCallIDs(env.Result)
	if err != nil || !reflect.DeepEqual(ids, []string{"1456297463-1249", "1456297722-1253"}) {
		t.Fatalf("got %v %v", ids, err)
	}
	cases := map[string][]string{
		`{"retcode":"0","result":[]}`:                 {},
		`{"retcode":"0"}`:                             {},
		`{"retcode":"0","result":null}`:               {},
		`{"retcode":0,"result":[ "b" , "a","a" ]}`:    {"a", "b"},
		`{"retcode":"0","result":["x\u002dy", 12]}`:   {"12", "x-y"},
		`{"message":"ok","retcode":"0","result":[1]}`: {"1"},
	}
	for body, want := range cases {
		env, err := decodeGateway([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		got, err := decodeCallIDs(env.Result)
		if err != nil || got == nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v %v", body, got, err)
		}
	}
	for _, bad := range []string{`{"retcode":"0","result":""}`, `{"retcode":"0","result":{}}`, `{"retcode":"0","result":[""]}`, `{"retcode":"0","result":[{}]}`} {
		env, err := decodeGateway([]byte(bad))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeCallIDs(env.Result); err == nil {
			t.Errorf("%s: want error", bad)
		}
	}
	for _, bad := range []string{`{"result":[]}`, `{"retcode":""}`, `[]`, `null`, `{"retcode":"0","result":[`, ``} {
		if _, err := decodeGateway([]byte(bad)); err == nil {
			t.Errorf("%s: want error", bad)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	env, err := decodeGateway(fixture(t, "agentevent.json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, ok, err := decodeEvent(env.Event)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ev.Type != "AgentEvent_Talking" || ev.WorkNo != "1522" || !ev.GenTime.Equal(time.UnixMilli(1700000000123)) {
		t.Fatalf("got %+v", ev)
	}
	var content struct{ Callid string }
	if err := json.Unmarshal(ev.Content, &content); err != nil || content.Callid != "1456297722-1253" {
		t.Fatalf("content %s %v", ev.Content, err)
	}
	for _, empty := range []string{`{"retcode":"0"}`, `{"retcode":"0","event":null}`, `{"retcode":"0","event":{}}`} {
		env, err := decodeGateway([]byte(empty))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := decodeEvent(env.Event); ok || err != nil {
			t.Errorf("%s: want empty poll, got %v %v", empty, ok, err)
		}
	}
	env, _ = decodeGateway([]byte(`{"retcode":"0","event":{"eventType":"AgentEvent_Call_Release","workNo":1522,"content":"1456403549-15","eventGenTime":"1700000000000"}}`))
	ev, ok, err = decodeEvent(env.Event)
	if err != nil || !ok || string(ev.Content) != `"1456403549-15"` || ev.WorkNo != "1522" || ev.GenTime.IsZero() {
		t.Fatalf("got %+v %v %v", ev, ok, err)
	}
}

func TestDecodeAgentStatusAndCallInfo(t *testing.T) {
	env, err := decodeGateway(fixture(t, "agentstatus.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := decodeAgentStatus(env.Result)
	if err != nil || *st != (AgentStatus{AgentState: 4}) {
		t.Fatalf("got %+v %v", st, err)
	}
	st, err = decodeAgentStatus(json.RawMessage(`[{"agentState":"7","isWorking":"true"}]`))
	if err != nil || *st != (AgentStatus{AgentState: 7, IsWorking: true}) {
		t.Fatalf("got %+v %v", st, err)
	}
	if _, err := decodeAgentStatus(json.RawMessage(`{}`)); err == nil {
		t.Error("want error for missing agentState")
	}
	env, err = decodeGateway(fixture(t, "callinfobycallid.json"))
	if err != nil {
		t.Fatal(err)
	}
	ci, err := decodeCallInfo(env.Result)
	if err != nil {
		t.Fatal(err)
	}
	if ci.CallID != "1456297722-1253" || ci.Caller != "88880001" || ci.Called != "1522" || ci.CallSkillID != 3 ||
		ci.MediaType != 5 || !ci.BeginTime.Equal(time.UnixMilli(1700000000000)) || !ci.EndTime.IsZero() {
		t.Fatalf("got %+v", ci)
	}
}

func TestFlexTypes(t *testing.T) {
	var n flexInt
	for in, want := range map[string]flexInt{`5060`: {5060, true}, `"5060"`: {5060, true}, `""`: {}, `null`: {}, `" 7 "`: {7, true}, `5060.0`: {5060, true}} {
		n = flexInt{}
		if err := json.Unmarshal([]byte(in), &n); err != nil || n != want {
			t.Errorf("%s: got %+v %v", in, n, err)
		}
	}
	for _, bad := range []string{`"12a"`, `1.5`, `true`, `{}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &n); err == nil {
			t.Errorf("%s: want error", bad)
		}
	}
	var b flexBool
	for in, want := range map[string]bool{`true`: true, `"true"`: true, `"FALSE"`: false, `1`: true, `"0"`: false, `null`: false} {
		if err := json.Unmarshal([]byte(in), &b); err != nil || bool(b) != want {
			t.Errorf("%s: got %v %v", in, b, err)
		}
	}
}

// ---- fuzz: no decoder may panic, and success must mean a sane value ----

func fuzzSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		f.Add(fixture(f, n))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"retcode":"0","result":["a",1,null]}`))
}

func FuzzDecodeToken(f *testing.F) {
	fuzzSeeds(f, "token.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, _, err := decodeToken(b)
		if err == nil && tok == "" {
			t.Fatal("empty token accepted")
		}
	})
}

func FuzzDecodeAgentInfo(f *testing.F) {
	fuzzSeeds(f, "query_agent_info.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeAgentInfo(b)
		if err == nil && (v == nil || v.Agents == nil) {
			t.Fatal("nil result without error")
		}
	})
}

func FuzzDecodePhonePage(f *testing.F) {
	fuzzSeeds(f, "query_phone.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodePhonePage(b)
		if err == nil && (v == nil || v.Total < 0) {
			t.Fatal("bad result without error")
		}
	})
}

func FuzzDecodeAgentAccount(f *testing.F) {
	fuzzSeeds(f, "query_agent_by_account.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := decodeAgentAccount(b); err == nil && v == nil {
			t.Fatal("nil result without error")
		}
	})
}

func FuzzDecodeAllCallInfo(f *testing.F) {
	fuzzSeeds(f, "allcallinfoex.json")
	f.Add([]byte(`{"retcode":"0"}`))
	f.Add([]byte(`{"retcode":"0","result":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := decodeGateway(b)
		if err != nil {
			return
		}
		ids, err := decodeCallIDs(env.Result)
		if err == nil && ids == nil {
			t.Fatal("nil IDs without error")
		}
		for _, id := range ids {
			if id == "" {
				t.Fatal("empty call ID accepted")
			}
		}
		// The fast path must agree with encoding/json whenever it succeeds.
		if fast, ok := scanStringArray(env.Result); ok {
			var slow []string
			if err := json.Unmarshal(env.Result, &slow); err != nil || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast %q slow %q %v", fast, slow, err)
			}
		}
	})
}

func FuzzDecodeAgentEvent(f *testing.F) {
	fuzzSeeds(f, "agentevent.json")
	f.Add([]byte(`{"retcode":"0","event":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := decodeGateway(b)
		if err != nil {
			return
		}
		ev, ok, err := decodeEvent(env.Event)
		if ok && (err != nil || ev.Type == "") {
			t.Fatal("event without type accepted")
		}
	})
}

func FuzzDecodeAgentStatus(f *testing.F) {
	fuzzSeeds(f, "agentstatus.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if env, err := decodeGateway(b); err == nil {
			if v, err := decodeAgentStatus(env.Result); err == nil && v == nil {
				t.Fatal("nil without error")
			}
		}
	})
}

func FuzzDecodeCallInfo(f *testing.F) {
	fuzzSeeds(f, "callinfobycallid.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if env, err := decodeGateway(b); err == nil {
			if v, err := decodeCallInfo(env.Result); err == nil && v == nil {
				t.Fatal("nil without error")
			}
		}
	})
}

// ---- benchmarks ----

func benchDecode(b *testing.B, name string, fn func([]byte) error) {
	body := fixture(b, name)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := fn(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeToken(b *testing.B) {
	benchDecode(b, "token.json", func(x []byte) error { _, _, err := decodeToken(x); return err })
}

func BenchmarkDecodeAgentInfo(b *testing.B) {
	benchDecode(b, "query_agent_info.json", func(x []byte) error { _, err := decodeAgentInfo(x); return err })
}

func BenchmarkDecodePhonePage(b *testing.B) {
	benchDecode(b, "query_phone.json", func(x []byte) error { _, err := decodePhonePage(x); return err })
}

func BenchmarkDecodeAgentAccount(b *testing.B) {
	benchDecode(b, "query_agent_by_account.json", func(x []byte) error { _, err := decodeAgentAccount(x); return err })
}

func BenchmarkDecodeAllCallInfo(b *testing.B) {
	benchDecode(b, "allcallinfoex.json", func(x []byte) error {
		env, err := decodeGateway(x)
		if err != nil {
			return err
		}
		_, err = decodeCallIDs(env.Result)
		return err
	})
}

func BenchmarkDecodeAgentEvent(b *testing.B) {
	benchDecode(b, "agentevent.json", func(x []byte) error {
		env, err := decodeGateway(x)
		if err != nil {
			return err
		}
		_, _, err = decodeEvent(env.Event)
		return err
	})
}

func BenchmarkDecodeAgentStatus(b *testing.B) {
	benchDecode(b, "agentstatus.json", func(x []byte) error {
		env, err := decodeGateway(x)
		if err != nil {
			return err
		}
		_, err = decodeAgentStatus(env.Result)
		return err
	})
}

func BenchmarkDecodeCallInfo(b *testing.B) {
	benchDecode(b, "callinfobycallid.json", func(x []byte) error {
		env, err := decodeGateway(x)
		if err != nil {
			return err
		}
		_, err = decodeCallInfo(env.Result)
		return err
	})
}
