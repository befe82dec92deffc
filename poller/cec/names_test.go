package cec_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/schemas"
)

// The names the client gives call statuses, directions and agent states
// are the names the event schemas accept, so the poller can publish them
// as they are.
func TestCMSNamesAreTheEventSchemasNames(t *testing.T) {
	enum := func(file, def, prop string) []string {
		b, err := schemas.Files.ReadFile("json/" + file)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Defs map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"$defs"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Defs[def].Properties[prop].Enum
	}
	statuses := enum("agent.calls.v2.json", "Call", "status")
	for st := cec.CallStatusUnknown; st <= cec.CallThreeWay+1; st++ {
		if !slices.Contains(statuses, st.String()) {
			t.Errorf("call status %d (%q) not in the schema's %v", st, st, statuses)
		}
	}
	directions := enum("agent.calls.v2.json", "Call", "direction")
	for _, d := range []cec.CallDirection{cec.DirectionUnknown, cec.DirectionInbound, cec.DirectionOutbound} {
		if !slices.Contains(directions, d.String()) {
			t.Errorf("direction %q not in the schema's %v", d, directions)
		}
	}
	states := enum("agent.state.v1.json", "AgentState", "state")
	for st := cec.AgentStateUnknown; st <= cec.AgentAdjusting+1; st++ {
		if !slices.Contains(states, st.String()) {
			t.Errorf("agent state %d (%q) not in the schema's %v", st, st, states)
		}
	}
}
