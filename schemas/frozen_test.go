package schemas_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/cecbridge/cecbridge/schemas"
)

// frozenSchemas pins what each published event schema accepts: the SHA-256
// of its JSON with every title and description removed, keys sorted. Every
// schema is closed, so a type never gains a field or an enum value; a
// richer fact is a new type on a subject of its own (README, Versions),
// which adds a line here and changes none.
var frozenSchemas = map[string]string{
	schemas.TypeAgentCalls:             "40a66185af832ce48023be9d5a4f2edcefbb33929f40ff86b36a45eb1f08178b",
	schemas.TypeAgentCallsV2:           "27e74a2d4249b411207d532e7c712c87352f12d0f80fe4c146c5200914e75418",
	schemas.TypeAgentSoftphone:         "70daac3e7b549ff422b869683c11710cf2d08611edd52e76a9dc6b7c5e7a0768",
	schemas.TypeAgentState:             "8bffc3ebcd1a3336e92e4ffd9fc0c0228eb87c8aaf3b6356601dd1afbad2c9e4",
	schemas.TypePhoneState:             "af78c71727123c5bfada83ff2f8efb9ae539c708feb0cb4de72672fcd85a4943",
	schemas.TypeBridgeVisibility:       "10845fb09ea04d8a3fe236792f42a6f98a9501c339b7c74de0d7f0116e233ddf",
	schemas.TypeBridgeHeartbeat:        "c57ff8c99a76589aff89e6211e06a168f9ea5387e5d5c5f8f369415025c5fe80",
	schemas.TypeBridgeStatesVisibility: "2be195bd60aea8c129eb910f1a0830ab6f9f84f3bbbe9d07106ca5b443eac243",
}

// The published event schemas accept exactly what they accepted when
// published: bridge.visibility.v1 has no states scope and
// bridge.heartbeat.v1 no states_not_visible, which
// bridge.states_visibility.v1 carries instead.
func TestEventSchemasAreFrozen(t *testing.T) {
	for _, typ := range schemas.EventTypes {
		want, ok := frozenSchemas[typ]
		if !ok {
			t.Errorf("%s: not pinned in frozenSchemas", typ)
			continue
		}
		b, err := schemas.Files.ReadFile(schemas.SchemaFile(typ))
		if err != nil {
			t.Fatal(err)
		}
		if got := contractHash(t, b); got != want {
			t.Errorf("%s: schema changed (contract %s, pinned %s): publish a new type instead", typ, got, want)
		}
	}
}

// contractHash hashes a schema without its prose.
func contractHash(t *testing.T, schema []byte) string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(schema, &doc); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(withoutProse(doc))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func withoutProse(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			if k != "title" && k != "description" {
				out[k] = withoutProse(x)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = withoutProse(x)
		}
		return out
	}
	return v
}
