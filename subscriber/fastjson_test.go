package subscriber

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// requestSeeds are bodies the scanner takes and bodies it must hand to
// encoding/json, for both the tests and the fuzzers.
var requestSeeds = []string{
	`{"work_no":1042}`, ` { "work_no" : 1042 , "min_seq" : 7 , "wait" : "1s" , "require_visible" : true } `,
	`{"work_no":-0}`, `{"work_no":9223372036854775807}`, `{"work_no":-9223372036854775808}`,
	`{"work_no":9223372036854775808}`, `{"min_seq":18446744073709551615}`, `{"min_seq":18446744073709551616}`,
	`{"min_seq":-0}`, `{"work_no":01}`, `{"work_no":1.0}`, `{"work_no":1e3}`, `{"work_no":+1}`, `{"work_no":"1"}`,
	`{"work_no":null}`, `{"WORK_NO":5}`, `{"work_no":1,"work_no":2}`, `{"work_no":1,}`, `{"work_no":1}x`,
	`{"work_no":1} {}`, `{}`, ``, "\v", ` `, `[1]`, `{"wait":"a\"b"}`, `{"wait":"é"}`, `{"phone_num":"88881042"}`,
	`{"phone_num":"a\u0041"}`, `{"max_age":"5s","require_visible":false}`, `{"require_visible":truex}`,
	`{"require_visible":tru}`, `{"x":{}}`, `{"work_no":[1]}`, `{"work_no":1-2}`, `{"":1}`, `{"work_no"1}`,
	"{\"work_no\":1\n}", `{"work_no":1`, `{`,
}

// checkDecoder holds one fast decoder to decodeStrict: whenever the
// scanner answers alone, encoding/json accepts the body and decodes the
// same request; otherwise both give the same outcome by construction.
func checkDecoder[T any](t *testing.T, body []byte, fast func([]byte) (T, error)) {
	t.Helper()
	got, gotErr := fast(body)
	var want T
	wantErr := decodeStrict(body, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q: fast decoder err %v, decodeStrict err %v", body, gotErr, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: fast decoder %+v, decodeStrict %+v", body, got, want)
	}
}

func checkDecoders(t *testing.T, body []byte) {
	t.Helper()
	checkDecoder(t, body, decodeAgentCalls)
	checkDecoder(t, body, decodeAgentSoftphone)
	checkDecoder(t, body, decodeAgentState)
	checkDecoder(t, body, decodePhoneState)
}

func TestFastDecodeAgreesWithEncodingJSON(t *testing.T) {
	fast := 0
	for _, s := range requestSeeds {
		checkDecoders(t, []byte(s))
		var r schemas.AgentCallsRequest
		if scanFlat([]byte(s), agentCallsKeys(&r)) {
			fast++
		}
	}
	// The point of the scanner: the usual bodies never reach encoding/json.
	if fast < 10 {
		t.Errorf("the scanner decoded only %d of the seeds", fast)
	}
}

func FuzzFastDecode(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkDecoders(t, []byte(s)) })
}

func checkEncoder(t *testing.T, resp any) {
	t.Helper()
	want, wantErr := json.Marshal(resp)
	got, gotErr := encodeAnswer([]byte("prefix"), resp)
	if (gotErr == nil) != (wantErr == nil) || gotErr == nil && string(got) != "prefix"+string(want) {
		t.Fatalf("encodeAnswer %s (err %v), json.Marshal %s (err %v)", got, gotErr, want, wantErr)
	}
}

func encodeSamples(s string, n int64, tm time.Time, flag bool) []any {
	code := int(n)
	var codep *int
	if flag {
		codep = &code
	}
	var ids []string
	if n%3 != 0 {
		ids = []string{s, "c-1", s + s}
	}
	meta := schemas.Meta{StreamSeq: uint64(n), Seq: uint64(n) * 7, Live: flag, Visible: !flag}
	if n%2 == 0 {
		meta.Observed = &tm
	}
	var signedIn *time.Time
	if !flag {
		signedIn = &tm
	}
	past := meta
	past.AsOf = &schemas.AsOf{At: tm, RetainedFrom: tm, EventID: s, From: schemas.AsOfEvent}
	return []any{
		schemas.AgentCallsResponse{Tenant: s, WorkNo: int(n), CallIDs: ids, Meta: meta},
		schemas.AgentStateResponse{Tenant: "dev", WorkNo: int(n), AgentState: schemas.AgentState{State: s, StateCode: code, Since: tm,
			PrevState: s, Reason: code, SignedInAt: signedIn}, Meta: meta},
		schemas.AgentStateResponse{Tenant: s, WorkNo: 1042, AgentState: schemas.AgentState{State: "idle", StateCode: 1}, Meta: past},
		schemas.AgentSoftphoneResponse{Tenant: "dev", WorkNo: int(n), SIPAccount: s, AccountCode: s + "x", SIPServerIP: "10.0.0.1",
			SIPServerPort: int(n), PhoneStatus: s, PhoneStatusCode: codep, Registered: flag, Meta: meta},
		schemas.PhoneStateResponse{Tenant: "dev", PhoneNum: s, Status: s, StatusCode: code, ConfigID: n, Meta: meta},
		schemas.AgentsListResponse{Tenant: s, Agents: []schemas.AgentSummary{}}, // not a point lookup: json.Marshal
	}
}

func TestFastEncodeAgreesWithEncodingJSON(t *testing.T) {
	times := []time.Time{
		time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC), time.Date(2026, 3, 1, 9, 30, 0, 120000000, time.UTC),
		time.Date(2026, 3, 1, 9, 30, 0, 1, time.FixedZone("x", 5*3600+1800)), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", 61)), time.Now(),
	}
	for i, s := range []string{"", "dev", "1700000000-41", "a<b", `q"uote`, "tab\t", "é", "\xff", "\u2028"} {
		for j, tm := range times {
			for _, r := range encodeSamples(s, int64(i*j-3), tm, (i+j)%2 == 0) {
				checkEncoder(t, r)
			}
		}
	}
}

func FuzzFastEncode(f *testing.F) {
	f.Add("dev", int64(1042), int64(1772357400), int64(0), true)
	f.Add("<&>", int64(-1), int64(-62135596801), int64(123), false)
	f.Fuzz(func(t *testing.T, s string, n, sec, nsec int64, flag bool) {
		for _, r := range encodeSamples(s, n, time.Unix(sec, nsec).UTC(), flag) {
			checkEncoder(t, r)
		}
	})
}
