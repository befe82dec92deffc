package schematest_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

var update = flag.Bool("update", false, "rewrite schemas/testdata/*.golden.json")

func TestExamplesAreValid(t *testing.T) {
	ex := schematest.Examples()
	for _, typ := range []string{schemas.TypeAgentCalls, schemas.TypeAgentSoftphone, schemas.TypePhoneState,
		schemas.TypeBridgeVisibility, schemas.TypeBridgeHeartbeat, schemas.TypeAgentCallsV2, schemas.TypeAgentState,
		schemas.TypeBridgeStatesVisibility} {
		body, ok := ex[typ]
		if !ok {
			t.Fatalf("no example for %s", typ)
		}
		if err := schematest.CheckEvent(body); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
		schematest.ValidateEvent(t, body)
	}
}

func TestDataSchema(t *testing.T) {
	if got, want := schemas.DataSchema(schemas.TypeAgentCalls), "https://cecbridge.dev/schemas/agent.calls.v1.json"; got != want {
		t.Errorf("DataSchema = %q, want %q", got, want)
	}
	if got := schemas.DataSchema("io.cecbridge.nope.v1"); got != "" {
		t.Errorf("DataSchema(unknown) = %q, want empty", got)
	}
	// Each schema's $id is the URI events carry in dataschema.
	for typ := range schematest.Examples() {
		b, err := schemas.Files.ReadFile(schemas.SchemaFile(typ))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			ID string `json:"$id"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.ID != schemas.DataSchema(typ) {
			t.Errorf("%s: $id %q != DataSchema %q", typ, doc.ID, schemas.DataSchema(typ))
		}
	}
}

// mutate decodes body, applies f to the generic document and re-encodes it.
func mutate(t *testing.T, body []byte, f func(ev map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	f(ev)
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func data(ev map[string]any) map[string]any { return ev["data"].(map[string]any) }

func TestInvalidEventsFail(t *testing.T) {
	ex := schematest.Examples()
	calls, phone, vis, hb := ex[schemas.TypeAgentCalls], ex[schemas.TypePhoneState], ex[schemas.TypeBridgeVisibility], ex[schemas.TypeBridgeHeartbeat]
	v2, state := ex[schemas.TypeAgentCallsV2], ex[schemas.TypeAgentState]
	states := ex[schemas.TypeBridgeStatesVisibility]
	firstCall := func(e map[string]any) map[string]any {
		return data(e)["after"].(map[string]any)["calls"].([]any)[0].(map[string]any)
	}
	cases := []struct {
		name string
		body []byte
		want string // part of the error
	}{
		{"not json", []byte("{"), "not a JSON object"},
		{"unknown type", mutate(t, calls, func(e map[string]any) { e["type"] = "io.cecbridge.nope.v1" }), "no schema"},
		{"missing envelope field", mutate(t, calls, func(e map[string]any) { delete(e, "source") }), "source"},
		{"extra envelope field", mutate(t, calls, func(e map[string]any) { e["extra"] = 1 }), "extra"},
		{"wrong specversion", mutate(t, calls, func(e map[string]any) { e["specversion"] = "0.3" }), "specversion"},
		{"bad time", mutate(t, calls, func(e map[string]any) { e["time"] = "yesterday" }), "time"},
		{"wrong dataschema", mutate(t, calls, func(e map[string]any) { e["dataschema"] = "https://x/y.json" }), "dataschema"},
		{"subject of another type", mutate(t, calls, func(e map[string]any) { e["subject"] = "cec.evt.acme.agent.1522.softphone" }), "subject"},
		{"bad op", mutate(t, calls, func(e map[string]any) { data(e)["op"] = "upsert" }), "op"},
		{"seq zero", mutate(t, calls, func(e map[string]any) { data(e)["seq"] = 0 }), "seq"},
		{"work_no out of range", mutate(t, calls, func(e map[string]any) { data(e)["key"].(map[string]any)["work_no"] = 5 }), "work_no"},
		{"extra data field", mutate(t, calls, func(e map[string]any) { data(e)["extra"] = true }), "extra"},
		{"update without before", mutate(t, calls, func(e map[string]any) { data(e)["before"] = nil }), "before"},
		{"seq 2 without prev_id", mutate(t, calls, func(e map[string]any) { delete(data(e), "prev_id") }), "prev_id"},
		{"call id not a string", mutate(t, calls, func(e map[string]any) {
			data(e)["after"] = map[string]any{"call_ids": []any{1}}
		}), "call_ids"},
		{"snapshot with after_poll", mutate(t, phone, func(e map[string]any) {
			data(e)["detected"].(map[string]any)["after_poll"] = "2026-03-01T09:29:00Z"
		}), "/data/detected"},
		{"phone key with work_no", mutate(t, phone, func(e map[string]any) { data(e)["key"].(map[string]any)["work_no"] = 1522 }), "/data/key"},
		{"phone status disagrees with code", mutate(t, phone, func(e map[string]any) {
			data(e)["after"].(map[string]any)["status_code"] = 1
		}), "status"},
		{"password leaks into phone state", mutate(t, phone, func(e map[string]any) {
			data(e)["after"].(map[string]any)["password"] = "secret"
		}), "password"},
		{"visibility bad state", mutate(t, vis, func(e map[string]any) { data(e)["state"] = "gone" }), "state"},
		{"visibility bad ranges", mutate(t, vis, func(e map[string]any) { data(e)["agents"] = "101-" }), "agents"},
		{"states picture bad ranges", mutate(t, states, func(e map[string]any) { data(e)["not_visible"] = "1522-" }), "not_visible"},
		{"states picture lost without agents", mutate(t, states, func(e map[string]any) { delete(data(e), "not_visible") }), "not_visible"},
		{"states picture empty with agents", mutate(t, states, func(e map[string]any) { data(e)["count"] = 0 }), "/data"},
		{"states picture empty with a reason", mutate(t, states, func(e map[string]any) {
			data(e)["count"] = 0
			delete(data(e), "not_visible")
		}), "/data"},
		{"states picture as a visibility scope", mutate(t, states, func(e map[string]any) { data(e)["scope"] = "states" }), "scope"},
		{"states scope in bridge.visibility.v1", mutate(t, vis, func(e map[string]any) { data(e)["scope"] = "states" }), "scope"},
		{"states_not_visible in bridge.heartbeat.v1", mutate(t, hb, func(e map[string]any) { data(e)["states_not_visible"] = "1522" }), "states_not_visible"},
		{"heartbeat negative count", mutate(t, hb, func(e map[string]any) { data(e)["agents_tracked"] = -1 }), "agents_tracked"},
		{"heartbeat missing instance", mutate(t, hb, func(e map[string]any) { delete(data(e), "instance") }), "instance"},
		// v1 is closed: the source (or call statuses) cannot be added to it.
		{"source in a v1 event", mutate(t, calls, func(e map[string]any) {
			data(e)["detected"].(map[string]any)["source"] = "cms"
		}), "source"},
		{"statuses in a v1 event", mutate(t, calls, func(e map[string]any) {
			data(e)["after"].(map[string]any)["calls"] = []any{}
		}), "calls"},
		{"v2 on the v1 subject", mutate(t, v2, func(e map[string]any) { e["subject"] = "cec.evt.acme.agent.1522.calls" }), "subject"},
		{"v2 unknown call status", mutate(t, v2, func(e map[string]any) { firstCall(e)["status"] = "ringing" }), "status"},
		{"v2 call without direction", mutate(t, v2, func(e map[string]any) { delete(firstCall(e), "direction") }), "direction"},
		{"v2 without calls", mutate(t, v2, func(e map[string]any) { delete(data(e)["after"].(map[string]any), "calls") }), "calls"},
		{"v2 unknown source", mutate(t, v2, func(e map[string]any) { data(e)["detected"].(map[string]any)["source"] = "guess" }), "source"},
		{"state name disagrees with code", mutate(t, state, func(e map[string]any) {
			data(e)["after"].(map[string]any)["state_code"] = 5
		}), "state"},
		{"state without since", mutate(t, state, func(e map[string]any) { delete(data(e)["after"].(map[string]any), "since") }), "since"},
		{"state code out of range", mutate(t, state, func(e map[string]any) {
			data(e)["after"].(map[string]any)["state_code"] = 11
		}), "state_code"},
		{"state with time in state", mutate(t, state, func(e map[string]any) {
			data(e)["after"].(map[string]any)["in_state"] = 12
		}), "in_state"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := schematest.CheckEvent(c.body)
			if err == nil {
				t.Fatalf("valid, want an error mentioning %q\nbody: %s", c.want, c.body)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

// TestValidateEventFailsTheTest checks that the helper reports through
// testing.TB rather than panicking or passing silently.
func TestValidateEventFailsTheTest(t *testing.T) {
	rec := &recorder{TB: t}
	schematest.ValidateEvent(rec, []byte(`{"type":"io.cecbridge.agent.calls.v1"}`))
	if !rec.failed {
		t.Fatal("ValidateEvent accepted an invalid event")
	}
	rec = &recorder{TB: t}
	schematest.ValidateJSON(rec, "agent.calls.v1.json", schematest.Examples()[schemas.TypeAgentCalls])
	if rec.failed {
		t.Fatalf("ValidateJSON rejected a valid event: %s", rec.msg)
	}
}

type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.msg = format
}

// TestGolden pins the JSON shape of one event of each type. Run with
// -update after an intended change and review the diff.
func TestGolden(t *testing.T) {
	for typ, body := range schematest.Examples() {
		name := strings.TrimPrefix(typ, "io.cecbridge.")
		path := filepath.Join("..", "testdata", name+".golden.json")
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, body, "", "  "); err != nil {
			t.Fatal(err)
		}
		pretty.WriteByte('\n')
		if *update {
			if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./schemas/schematest -update)", err)
		}
		if !bytes.Equal(pretty.Bytes(), want) {
			t.Errorf("%s changed shape:\ngot:\n%s\nwant:\n%s", name, pretty.Bytes(), want)
		}
		schematest.ValidateJSON(t, schemas.SchemaFile(typ), want)
	}
}

// Each type's subject parses back to its entity, aspect and type, and the
// subject helpers agree with the schemas' subject patterns.
func TestEveryExampleSubjectNamesItsType(t *testing.T) {
	for typ, body := range schematest.Examples() {
		var ev schemas.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatal(err)
		}
		ps, err := schemas.ParseSubject(ev.Subject)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if got := ps.EventType(); got != typ {
			t.Errorf("%s: subject %s gives type %q", typ, ev.Subject, got)
		}
	}
	for subject, want := range map[string]schemas.ParsedSubject{
		schemas.AgentStateSubject("acme", 1522):   {Tenant: "acme", Entity: "agent", WorkNo: 1522, Aspect: schemas.AspectState, Kind: schemas.KindAgentState},
		schemas.AgentCallsV2Subject("acme", 1522): {Tenant: "acme", Entity: "agent", WorkNo: 1522, Aspect: schemas.AspectCallsV2, Kind: schemas.KindAgentCallsV2},
		schemas.AgentCallsSubject("acme", 1522):   {Tenant: "acme", Entity: "agent", WorkNo: 1522, Aspect: schemas.AspectCalls, Kind: schemas.KindAgentCalls},
	} {
		ps, err := schemas.ParseSubject(subject)
		if err != nil || ps != want {
			t.Errorf("%s: %+v %v", subject, ps, err)
		}
	}
	if got := (schemas.ParsedSubject{Entity: "agent", Aspect: "mood"}).EventType(); got != "" {
		t.Errorf("unknown aspect gives type %q", got)
	}
	if schemas.AgentStateSubject("acme", 1522) != "cec.evt.acme.agent.1522.state" ||
		schemas.AgentCallsV2Subject("acme", 1522) != "cec.evt.acme.agent.1522.calls_v2" {
		t.Error("subject spelling changed")
	}
}
