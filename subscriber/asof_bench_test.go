package subscriber

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/schemas"
)

// BenchmarkAsOfLookup compares an agent.calls answer as of a past instant
// (rebuilt with direct gets) with the same answer from the live view, one
// request at a time, over 200 agents with 20 events each.
func BenchmarkAsOfLookup(b *testing.B) {
	e := newHistoryEnvTB(b, -1)
	now := time.Now()
	var last uint64
	for seq := range 20 {
		for w := range 200 {
			last = e.br.calls(1001+w, []string{"c" + string(rune('a'+seq))}, now)
		}
	}
	at := time.Now().UTC().Format(time.RFC3339Nano)
	e.br.calls(1001, []string{"later"}, now)
	e.settle(b, last)
	run := func(b *testing.B, asOf string) {
		req, _ := json.Marshal(schemas.AgentCallsRequest{WorkNo: 1100, ReadOptions: schemas.ReadOptions{AsOf: asOf}})
		subj := schemas.LookupSubject("dev", schemas.LookupAgentCalls)
		for b.Loop() {
			msg, err := e.nc.Request(subj, req, 5*time.Second)
			if err != nil || msg.Header.Get("Nats-Service-Error-Code") != "" {
				b.Fatalf("%v %v", err, msg.Header)
			}
		}
	}
	b.Run("live-view", func(b *testing.B) { run(b, "") })
	b.Run("as-of", func(b *testing.B) { run(b, at) })
}
