package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/probe"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
)

// committedCapture is the capture of the simulator that the client's
// decoder tests read. Regenerate it with
//
//	CECBRIDGE_WRITE_CAPTURE=1 go test ./cmd/cecsim -run TestCommittedCapture
const committedCapture = "../../poller/cec/testdata/captures/simulator"

// probeOptions are the options every probe in these tests runs with.
var probeOptions = probe.Options{GUIDWatch: 500 * time.Millisecond}

// captureSim is the simulator the committed capture was made from: a
// tenant that says "no call" with a code, answers an empty poll with
// event null, flattens regServ and rotates GUIDs quickly.
func captureSim(t *testing.T) *cecsim.Sim {
	t.Helper()
	sim := cecsimtest.Start(t, cecsim.Config{
		Agents: 12, LongPollHold: 50 * time.Millisecond, NoPollTimeout: 10 * time.Second,
		GUIDInterval: 200 * time.Millisecond, GUIDTimeout: time.Second,
		NoCallMode: cecsim.NoCallError, NoCallCode: "900-002",
		EmptyPollMode: cecsim.EmptyPollNull, FlatRegServ: true,
		ExpiredTokenStatus: 401, ExpiredTokenBody: `{"retCode":"401","retMsg":"token expired"}`,
	})
	if _, err := sim.StartCall(1002); err != nil {
		t.Fatal(err)
	}
	return sim
}

func tenantAt(url string) configs.Tenant {
	b := configs.WithDefaults(configs.Bridge{Tenants: []configs.Tenant{{
		Name: "simulator", FabricURL: url, GatewayURL: url, AppKey: "app-key", AppSecret: "app-secret",
		Timeout:  2 * time.Second,
		Monitors: []configs.Monitor{{AgentID: 1001, Password: "agent-pass"}},
	}}})
	return b.Tenants[0]
}

func probeAt(t *testing.T, url string) (*probe.Probe, *probe.Report) {
	t.Helper()
	p, err := probe.New(tenantAt(url), probeOptions)
	if err != nil {
		t.Fatal(err)
	}
	return p, p.Run(t.Context())
}

// startReplay runs "cecsim --replay dir" until the test ends.
func startReplay(t *testing.T, dir string) *cecsim.Sim {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *cecsim.Sim, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- runWith(ctx, []string{"-addr", "127.0.0.1:0", "-replay", dir}, io.Discard, func(s *cecsim.Sim) { ready <- s })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("cecsim --replay: %v", err)
		}
	})
	select {
	case s := <-ready:
		return s
	case err := <-errc:
		t.Fatalf("cecsim --replay %s: %v", dir, err)
	case <-time.After(10 * time.Second):
		t.Fatal("cecsim --replay never became ready")
	}
	return nil
}

// sameBehaviour compares two reports row by row, leaving out timings.
func sameBehaviour(t *testing.T, want, got []probe.Row) {
	t.Helper()
	strip := func(rows []probe.Row) []probe.Row {
		out := slices.Clone(rows)
		for i := range out {
			out[i].Timing = ""
		}
		return out
	}
	w, g := strip(want), strip(got)
	if len(w) != len(g) {
		t.Fatalf("%d rows, want %d", len(g), len(w))
	}
	for i := range w {
		wj, _ := json.Marshal(w[i])
		gj, _ := json.Marshal(g[i])
		if string(wj) != string(gj) {
			t.Errorf("row %d differs:\n got %s\nwant %s", i, gj, wj)
		}
	}
}

// A capture of the simulator, replayed by cecsim --replay, gets the same
// probe report as the simulator did.
func TestCaptureReplaysToTheSameReport(t *testing.T) {
	sim := captureSim(t)
	p, first := probeAt(t, sim.URL())
	dir := t.TempDir()
	if err := p.WriteCapture(dir); err != nil {
		t.Fatal(err)
	}
	replay := startReplay(t, dir)
	_, second := probeAt(t, replay.URL())
	sameBehaviour(t, first.Checks, second.Checks)
}

// The committed capture replays to the report it holds; with
// CECBRIDGE_WRITE_CAPTURE=1 the capture is made anew from the simulator.
func TestCommittedCaptureReplaysToItsReport(t *testing.T) {
	if os.Getenv("CECBRIDGE_WRITE_CAPTURE") == "1" {
		p, _ := probeAt(t, captureSim(t).URL())
		if err := os.RemoveAll(committedCapture); err != nil {
			t.Fatal(err)
		}
		if err := p.WriteCapture(committedCapture); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(committedCapture, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want probe.Report
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	replay := startReplay(t, committedCapture)
	_, got := probeAt(t, replay.URL())
	// Suggestions decode from JSON as []any; compare them as JSON too.
	sameBehaviour(t, want.Checks, got.Checks)
}
