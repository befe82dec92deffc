package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
)

// A tenant's cms block becomes a CMS client that the simulator accepts,
// with its VDNs and signing variant as configured.
func TestCMSBlockBecomesAWorkingCMSClient(t *testing.T) {
	sim := cecsimtest.Start(t, cecsim.Config{Agents: 20, AgentsPerVDN: 10})
	client, err := cec.New(cec.Config{FabricURL: sim.URL(), GatewayURL: sim.URL(), AppKey: "app-key", AppSecret: "app-secret", RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := NewCMS(client, nil); m != nil || err != nil {
		t.Fatalf("no block: %v %v", m, err)
	}
	block := &configs.CMS{
		URL: sim.URL(), AK: "cms-ak", SK: "cms-sk", CCID: 1,
		VDNs:          []configs.CMSVDN{{VDN: 1}, {VDN: 2, WorkNos: "1011-1020"}},
		SignedHeaders: []string{"host", "content-length", "content-type"}, Timestamp: configs.CMSTimestampMillis,
	}
	m, err := NewCMS(client, block)
	if err != nil {
		t.Fatal(err)
	}
	chunks, unplanned := m.Plan(sim.Agents(), cec.MaxCallsAgents)
	if len(chunks) != 2 || len(unplanned) != 0 || chunks[1].VDN != 2 || chunks[1].Agents[0] != 1011 {
		t.Fatalf("chunks %+v, unplanned %v", chunks, unplanned)
	}
	for _, r := range cec.Sweep(context.Background(), chunks, 2, m.QueryAgentStates) {
		if r.Err != nil || len(r.Answer.Agents) != 10 {
			t.Fatalf("VDN %d: %v", r.Chunk.VDN, r.Err)
		}
	}
	block.SK = "wrong"
	m, _ = NewCMS(client, block)
	if _, err := m.TotalAgentState(context.Background(), 1); !errors.Is(err, cec.ErrSignatureRefused) {
		t.Fatalf("wrong SK: %v", err)
	}
}
