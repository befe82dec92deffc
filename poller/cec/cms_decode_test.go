package cec

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

var vectorChunk = Chunk{VDN: 170, Agents: []int{1031, 1099}}

func cmsPayload(t testing.TB, name string) json.RawMessage {
	t.Helper()
	p, err := decodeCMS(fixture(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

func TestCMSCallsAreKeyedByTheAgentIDInTheAnswer(t *testing.T) {
	a, err := decodeAgentCalls(cmsPayload(t, "cms_queryagentcalls.json"), vectorChunk)
	if err != nil {
		t.Fatal(err)
	}
	want := []AgentCalls{
		{WorkNo: 1031, Calls: []Call{
			{ID: "1605494259-1447", Status: CallHeld, Direction: DirectionOutbound, MediaType: 5},
			{ID: "1605494261-1449", Status: CallTalking, Direction: DirectionInbound, MediaType: 5},
		}},
		{WorkNo: 1099, Calls: []Call{}},
	}
	if !reflect.DeepEqual(a.Agents, want) {
		t.Fatalf("agents %+v\nwant   %+v", a.Agents, want)
	}
	// 1040 was not asked about: ignored, whatever its calls.
	if a.Ignored != 1 || len(a.NotObserved) != 0 {
		t.Errorf("ignored %d, not observed %v", a.Ignored, a.NotObserved)
	}
	if got, ok := a.Agent(1099); !ok || got.Calls == nil || len(got.Calls) != 0 {
		t.Errorf("agent 1099 has no call: got %+v %v", got, ok)
	}
	if _, ok := a.Agent(1040); ok {
		t.Error("an agent not asked about was answered")
	}
	if ids := want[0].CallIDs(); !slices.Equal(ids, []string{"1605494259-1447", "1605494261-1449"}) {
		t.Errorf("CallIDs %v", ids)
	}
}

// An agent the answer leaves out, or describes without a call list, with a
// broken entry or twice differently, is not observed: never "no call".
func TestCMSAgentMissingFromTheAnswerIsNotObserved(t *testing.T) {
	ch := Chunk{VDN: 1, Agents: []int{1001, 1002, 1003, 1004, 1005, 1006, 1007}}
	payload := `[
		{"agentId":1001,"callList":[]},
		{"agentId":1002},
		{"agentId":1003,"callList":null},
		{"agentId":1004,"callList":[{"callId":"","callStatus":4}]},
		{"agentId":1005,"callList":[{"callId":"a-1"}]},
		{"agentId":1005,"callList":[{"callId":"a-2"}]},
		{"agentId":1006,"callList":"garbled"},
		{"callList":[]},
		{"agentId":"x","callList":[]},
		{"agentId":7,"callList":[]},
		[1,2],
		{"agentId":1001,"callList":[]}
	]`
	a, err := decodeAgentCalls(json.RawMessage(payload), ch)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Agents) != 1 || a.Agents[0].WorkNo != 1001 {
		t.Errorf("observed %+v, want only 1001 (its repeated identical entry is harmless)", a.Agents)
	}
	if want := []int{1002, 1003, 1004, 1005, 1006, 1007}; !slices.Equal(a.NotObserved, want) {
		t.Errorf("not observed %v, want %v", a.NotObserved, want)
	}
	if a.Ignored != 4 {
		t.Errorf("ignored %d entries, want 4 (no agentId, bad agentId twice, not an object)", a.Ignored)
	}
	// A call without a status or direction is kept, and says so.
	b, err := decodeAgentCalls(json.RawMessage(`[{"agentId":1001,"callList":[{"callId":"x-1","callStatus":"","callInOut":7},{"callId":"x-1","callStatus":5}]}]`), Chunk{VDN: 1, Agents: []int{1001}})
	if err != nil || len(b.Agents) != 1 {
		t.Fatalf("%+v %v", b, err)
	}
	if c := b.Agents[0].Calls; len(c) != 1 || c[0] != (Call{ID: "x-1", Status: CallStatusUnknown, Direction: DirectionUnknown}) {
		t.Errorf("calls %+v: want one call x-1 of unknown status and direction", c)
	}
}

func TestCMSEnvelopeCodesAndShapes(t *testing.T) {
	var ce *codeError
	if _, err := decodeCMS(fixture(t, "cms_error.json")); !errors.As(err, &ce) || ce.code != "0100002" || ce.msg != "agentIds exceeds 3000" {
		t.Errorf("error answer: %v", err)
	}
	if p, err := decodeCMS([]byte(`{"result":"0","resultDatas":[{"agentId":1}]}`)); err != nil || string(p) != `[{"agentId":1}]` {
		t.Errorf("legacy success with only resultDatas: %s %v", p, err)
	}
	if _, err := decodeCMS([]byte(`{"result":"1","resultDesc":"x"}`)); !errors.As(err, &ce) || ce.code != "1" {
		t.Errorf("legacy failure: %v", err)
	}
	for _, bad := range []string{`null`, `[]`, `{}`, `{"resultCode":"0100000"}`, `{"resultCode":"0100000","resultDesc":null}`, `{"resultCode":`} {
		if _, err := decodeCMS([]byte(bad)); err == nil || errors.As(err, &ce) {
			t.Errorf("%s: want a shape error, got %v", bad, err)
		}
	}
	for _, bad := range []string{`{}`, `"x"`, `[1,`} {
		if _, err := decodeAgentCalls(json.RawMessage(bad), vectorChunk); err == nil {
			t.Errorf("payload %s accepted", bad)
		}
	}
}

func TestCMSAgentStatesDecodeLooseTypes(t *testing.T) {
	a, err := decodeAgentStates(cmsPayload(t, "cms_agentstatusinfobyagentids.json"), vectorChunk)
	if err != nil {
		t.Fatal(err)
	}
	want := []AgentState{
		{WorkNo: 1031, State: AgentTalking, InState: 42 * time.Second, PrevState: AgentIdle, PrevInState: 300 * time.Second,
			SignedInAt: time.UnixMilli(1735787045000), LocationID: "0"},
		{WorkNo: 1099, State: AgentNotSignedIn, InState: time.Hour, PrevState: AgentIdle, PrevInState: 20 * time.Second, LocationID: "0"},
	}
	if !reflect.DeepEqual(a.Agents, want) {
		t.Fatalf("got  %+v\nwant %+v", a.Agents, want)
	}
	if a.Agents[0].State.String() != "talking" || AgentStateCode(42).String() != "unknown" {
		t.Error("state names")
	}
	b, err := decodeAgentStates(json.RawMessage(`[{"agentId":1031},{"agentId":1099,"currentState":99}]`), vectorChunk)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.NotObserved, []int{1031}) || len(b.Agents) != 1 || b.Agents[0].State != AgentStateUnknown {
		t.Errorf("an entry without currentState must not be observed; an unknown one is kept as unknown: %+v", b)
	}
}

func TestCMSTotalAgentStateDropsConflictingEntries(t *testing.T) {
	v, err := decodeTotalAgentState(cmsPayload(t, "cms_totalagentstate.json"), 170)
	if err != nil {
		t.Fatal(err)
	}
	want := []AgentPresence{{1031, AgentTalking}, {1040, AgentIdle}, {1099, AgentNotSignedIn}}
	if !reflect.DeepEqual(v.Agents, want) || v.Ignored != 0 {
		t.Fatalf("got %+v (ignored %d)", v.Agents, v.Ignored)
	}
	v, err = decodeTotalAgentState(json.RawMessage(`[{"agentId":1001,"state":1},{"agentId":1001,"state":5},{"agentId":1002,"state":1},{"agentId":1002,"state":1},{"agentId":1003}]`), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v.Agents, []AgentPresence{{1002, AgentIdle}}) || v.Ignored != 4 {
		t.Fatalf("got %+v (ignored %d)", v.Agents, v.Ignored)
	}
}

func TestCallStatusAndDirectionNames(t *testing.T) {
	for st, name := range map[CallStatus]string{CallAlerting: "alerting", CallTalking: "talking", CallHeld: "held",
		CallThreeWay: "three_way", CallStatusUnknown: "unknown", CallStatus(10): "unknown"} {
		if st.String() != name {
			t.Errorf("%d: %q, want %q", st, st.String(), name)
		}
	}
	if DirectionInbound.String() != "inbound" || DirectionOutbound.String() != "outbound" || DirectionUnknown.String() != "unknown" {
		t.Error("direction names")
	}
}

// ---- fuzz: a chunk's answer always partitions the chunk ----

func checkPartition(t *testing.T, ch Chunk, observed []int, o Observation) {
	t.Helper()
	if !slices.IsSorted(observed) || !slices.IsSorted(o.NotObserved) {
		t.Fatalf("unsorted: %v / %v", observed, o.NotObserved)
	}
	all := append(slices.Clone(observed), o.NotObserved...)
	slices.Sort(all)
	if !slices.Equal(all, ch.Agents) {
		t.Fatalf("observed %v + not observed %v != chunk %v", observed, o.NotObserved, ch.Agents)
	}
}

var fuzzChunk = Chunk{VDN: 1, Agents: []int{1001, 1031, 1040, 1099}}

// slowCalls and slowStates are the encoding/json paths the fast ones must
// agree with.
func slowCalls(b []byte, ch Chunk) (*CallsAnswer, error) {
	p, err := decodeCMS(b)
	if err != nil {
		return nil, err
	}
	return decodeAgentCalls(p, ch)
}

func slowStates(b []byte, ch Chunk) (*StatesAnswer, error) {
	p, err := decodeCMS(b)
	if err != nil {
		return nil, err
	}
	return decodeAgentStates(p, ch)
}

func TestCMSFastPathAgreesWithEncodingJSONOrStepsAside(t *testing.T) {
	ch := Chunk{VDN: 1, Agents: []int{1001, 1002, 1003}}
	agree := []string{
		string(fixture(t, "cms_queryagentcalls.json")),
		`{"resultCode":"0100000","resultDesc":[{"agentId":"1001","callList":[{"callId":"b-1","callStatus":"5","callInOut":1,"mediaType":null,"x":{"y":[1,2.5e3,"\u00e9"]}}]},{"agentId":1002,"callList":null},{"agentId":1003}],"resultDatas":[{"a":true}],"result":0}`,
		`{"resultCode":"0100000","resultDesc":[{"agentId":1001,"callList":[]},{"agentId":1001,"callList":[{"callId":"x"}]},{"agentId":1002,"callList":[{"callId":""}]},{"agentId":" 1003 ","callList":[{"callId":7,"callStatus":""}]}]}`,
	}
	for _, body := range agree {
		fast, ok := fastAgentCalls([]byte(body), ch)
		if !ok {
			t.Errorf("fast path declined %s", body)
			continue
		}
		slow, err := slowCalls([]byte(body), ch)
		if err != nil || !reflect.DeepEqual(fast, slow) {
			t.Errorf("%s:\nfast %+v\nslow %+v %v", body, fast, slow, err)
		}
	}
	states := string(fixture(t, "cms_agentstatusinfobyagentids.json"))
	fs, ok := fastAgentStates([]byte(states), vectorChunk)
	ss, err := slowStates([]byte(states), vectorChunk)
	if !ok || err != nil || !reflect.DeepEqual(fs, ss) {
		t.Errorf("states: fast %+v (%v)\nslow %+v (%v)", fs, ok, ss, err)
	}
	// Shapes the fast path leaves to encoding/json.
	for _, body := range []string{
		string(fixture(t, "cms_error.json")),
		`{"resultCode":"0100000","resultDesc":[{"AgentId":1001,"callList":[]}]}`,
		`{"resultCode":"0100000","resultDesc":[{"agentId":1001,"callList":[{"callId":"a\u002db"}]}]}`,
		`{"resultCode":"0100000","resultDesc":[{"agentId":1001.0,"callList":[]}]}`,
		`{"resultCode":"0100000","resultDesc":null,"resultDatas":[{"agentId":1001,"callList":[]}]}`,
		`{"resultCode":"0100000","resultCode":"0100000","resultDesc":[]}`,
		`{"resultCode":"0100000","resultDesc":[],"result":{}}`,
		`{"resultCode":"0100000","resultDesc":[]} x`,
		`{"resultCode":"0100000","resultDesc":[1]}`,
	} {
		if a, ok := fastAgentCalls([]byte(body), ch); ok {
			t.Errorf("fast path answered %s: %+v", body, a)
		}
	}
}

func FuzzDecodeCMSAgentCalls(f *testing.F) {
	fuzzSeeds(f, "cms_queryagentcalls.json", "cms_error.json")
	f.Add([]byte(`{"resultCode":"0100000","resultDesc":[{"agentId":1001,"callList":[{"callId":"a","callStatus":"4"}]},{"agentId":1001}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := slowCalls(b, fuzzChunk)
		if fast, ok := fastAgentCalls(b, fuzzChunk); ok && (err != nil || !reflect.DeepEqual(fast, a)) {
			t.Fatalf("fast path %+v, encoding/json %+v %v", fast, a, err)
		}
		if err != nil {
			return
		}
		var wns []int
		for _, ag := range a.Agents {
			wns = append(wns, ag.WorkNo)
			if ag.Calls == nil {
				t.Fatal("observed agent with nil calls")
			}
			for i, c := range ag.Calls {
				if c.ID == "" || (i > 0 && ag.Calls[i-1].ID >= c.ID) {
					t.Fatalf("calls not sorted, unique and named: %+v", ag.Calls)
				}
			}
		}
		checkPartition(t, fuzzChunk, wns, a.Observation)
	})
}

func FuzzDecodeCMSAgentStates(f *testing.F) {
	fuzzSeeds(f, "cms_agentstatusinfobyagentids.json", "cms_error.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := slowStates(b, fuzzChunk)
		if fast, ok := fastAgentStates(b, fuzzChunk); ok && (err != nil || !reflect.DeepEqual(fast, a)) {
			t.Fatalf("fast path %+v, encoding/json %+v %v", fast, a, err)
		}
		if err != nil {
			return
		}
		var wns []int
		for _, s := range a.Agents {
			wns = append(wns, s.WorkNo)
			if s.InState < 0 || s.PrevInState < 0 {
				t.Fatalf("negative time in state: %+v", s)
			}
		}
		checkPartition(t, fuzzChunk, wns, a.Observation)
	})
}

func FuzzDecodeCMSTotalAgentState(f *testing.F) {
	fuzzSeeds(f, "cms_totalagentstate.json", "cms_error.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeCMS(b)
		if err != nil {
			return
		}
		v, err := decodeTotalAgentState(p, 1)
		if err != nil {
			return
		}
		for i, a := range v.Agents {
			if a.WorkNo < 101 || a.WorkNo > 999999 || (i > 0 && v.Agents[i-1].WorkNo >= a.WorkNo) {
				t.Fatalf("agents not sorted, unique and in range: %+v", v.Agents)
			}
		}
	})
}

func BenchmarkDecodeCMSAgentCalls3000(b *testing.B) {
	ch := Chunk{VDN: 1}
	var list []map[string]any
	for i := range 3000 {
		wn := 1001 + i
		ch.Agents = append(ch.Agents, wn)
		calls := []map[string]any{}
		if i%3 == 0 {
			calls = append(calls, map[string]any{"callId": "1700000000-" + string(rune('a'+i%26)), "callStatus": 5, "callInOut": 0, "mediaType": 5})
		}
		list = append(list, map[string]any{"agentId": wn, "callList": calls})
	}
	// As the vendor sends it: the list twice, in resultDesc and resultDatas.
	body, _ := json.Marshal(map[string]any{"result": "0", "resultCode": "0100000", "resultDesc": list, "resultDatas": list})
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := fastAgentCalls(body, ch); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := slowCalls(body, ch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
