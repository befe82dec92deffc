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

// EndpointOf names every path the client asks, as the client names it to
// its Observer, under whatever prefix the tenant's URLs carry.
func TestEndpointOfNamesEveryPath(t *testing.T) {
	for _, tt := range []struct{ method, path, want string }{
		{"POST", "/apigovernance/api/oauth/tokenByAkSk", "tokenByAkSk"},
		{"GET", "/apiaccess/CC-Management/v1/queryAgentInfo", "queryAgentInfo"},
		{"POST", "/apiaccess/CC-Management/v2/mobileAgent/queryPhone", "queryPhone"},
		{"POST", "/apiaccess/rest/CC-Management/v1/queryAgentInfoByAccount", "queryAgentInfoByAccount"},
		{"PUT", "/agentgateway/resource/onlineagent/1001", "login"},
		{"PUT", "/agentgateway/resource/onlineagent/1001/loginex", "loginex"},
		{"DELETE", "/agentgateway/resource/onlineagent/1001/logout", "logout"},
		{"GET", "/agentgateway/resource/agentevent/1001", "agentevent"},
		{"GET", "/agentgateway/resource/calldata/1001/allcallinfoEx/1002", "allcallinfoEx"},
		{"POST", "/rest/cmsapp/v1/openapi/agentgroup/queryagentcalls", cec.EndpointQueryAgentCalls},
		{"POST", "/cms/rest/cmsapp/v1/openapi/agentgroup/agentstatusinfobyagentids", cec.EndpointAgentStates},
		{"POST", "/rest/cmsapp/v1/openapi/vdn/totalagentstate", cec.EndpointTotalAgentStates},
		{"POST", "/rest/cmsapp/v1/openapi/vdn/somethingelse", ""},
		{"GET", "/somewhere/else", ""},
	} {
		if got := cec.EndpointOf(tt.method, tt.path); got != tt.want {
			t.Errorf("EndpointOf(%s %s) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}
