package main

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// committedCMS is the CC-CMS of the committed capture: it accepts one
// signing variant, not the configured one, so that the capture holds a
// refused signature as well as answers of both CMS interfaces.
var committedCMS = cecsim.CMS{SignedHeaders: []string{"content-length", "content-type", "host"}, Timestamp: cecsim.C2Millis}

// probeOptions are the options every probe in these tests runs with.
var probeOptions = probe.Options{GUIDWatch: 500 * time.Millisecond}

// captureSim is the simulator the committed capture was made from: a
// tenant that says "no call" with a code, answers an empty poll with
// event null, flattens regServ, rotates GUIDs quickly, and has CC-CMS as
// cms says.
func captureSim(t *testing.T, cms cecsim.CMS) *cecsim.Sim {
	t.Helper()
	sim := cecsimtest.Start(t, cecsim.Config{
		Agents: 12, LongPollHold: 50 * time.Millisecond, NoPollTimeout: 10 * time.Second,
		GUIDInterval: 200 * time.Millisecond, GUIDTimeout: time.Second,
		NoCallMode: cecsim.NoCallError, NoCallCode: "900-002",
		EmptyPollMode: cecsim.EmptyPollNull, FlatRegServ: true,
		ExpiredTokenStatus: 401, ExpiredTokenBody: `{"retCode":"401","retMsg":"token expired"}`,
		CMS: cms,
	})
	if _, err := sim.StartCall(1002); err != nil {
		t.Fatal(err)
	}
	return sim
}

// tenantAt is the tenant of the simulator at url; with a CMS secret key,
// it has a cms block signing the vendor demo's way (host, seconds).
func tenantAt(url, cmsSK string) configs.Tenant {
	tc := configs.Tenant{
		Name: "simulator", FabricURL: url, GatewayURL: url, AppKey: "app-key", AppSecret: "app-secret",
		Timeout:  2 * time.Second,
		Monitors: []configs.Monitor{{AgentID: 1001, Password: "agent-pass"}},
	}
	if cmsSK != "" {
		tc.CMS = &configs.CMS{URL: url, AK: "cms-ak", SK: configs.Secret(cmsSK), CCID: 1, VDNs: []configs.CMSVDN{{VDN: 1}}}
	}
	return configs.WithDefaults(configs.Bridge{Tenants: []configs.Tenant{tc}}).Tenants[0]
}

func probeAt(t *testing.T, url, cmsSK string) (*probe.Probe, *probe.Report) {
	t.Helper()
	p, err := probe.New(tenantAt(url, cmsSK), probeOptions)
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
// probe report as the simulator did, whatever its CC-CMS does.
func TestCaptureReplaysToTheSameReport(t *testing.T) {
	every := []string{"content-length", "content-type", "host"}
	for _, tt := range []struct {
		name  string
		cms   cecsim.CMS
		sk    string // the tenant's CMS secret key; "" for no cms block
		cmsIs string // what the cms row must say
		// replaySK, if set, is the key the replay is probed with: the
		// replaying simulator's own, so that only the replayed
		// behaviour can refuse it.
		replaySK string
	}{
		{name: "CMS off", cmsIs: "CMS not configured"},
		{name: "CMS on", sk: "cms-sk", cmsIs: "queryagentcalls answered for 12 of 12 agents asked (1 in a call"},
		{name: "CMS naming agents nobody asked about", sk: "cms-sk", cms: cecsim.CMS{AnswerUnasked: true}, cmsIs: "1 answers about agents not asked"},
		{name: "CMS not licensed", sk: "cms-sk", cms: cecsim.CMS{NotLicensed: true}, cmsIs: "code 0100003"},
		{name: "CMS refusing this client (HTTP 403)", sk: "cms-sk", cms: cecsim.CMS{RefuseClient: true}, cmsIs: "HTTP 403, CMS refused this client"},
		{name: "CMS with a wrong secret key", sk: "not-the-key", replaySK: "cms-sk", cmsIs: "CMS refused every signature variant (HTTP 401)"},
		{name: "CMS accepting another signing variant", sk: "cms-sk", cms: cecsim.CMS{SignedHeaders: every, Timestamp: cecsim.C2Millis},
			cmsIs: "signing content-length;content-type;host with milliseconds timestamps is accepted"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim := captureSim(t, tt.cms)
			p, first := probeAt(t, sim.URL(), tt.sk)
			if got := cmsRow(t, first); !strings.Contains(got.Answered, tt.cmsIs) {
				t.Fatalf("the cms row does not say %q: %+v", tt.cmsIs, got)
			}
			dir := t.TempDir()
			if err := p.WriteCapture(dir); err != nil {
				t.Fatal(err)
			}
			replay := startReplay(t, dir)
			_, second := probeAt(t, replay.URL(), cmp.Or(tt.replaySK, tt.sk))
			sameBehaviour(t, first.Checks, second.Checks)
		})
	}
}

func cmsRow(t *testing.T, r *probe.Report) probe.Row {
	t.Helper()
	for _, row := range r.Checks {
		if row.Check == "cms" {
			return row
		}
	}
	t.Fatal("no cms row")
	return probe.Row{}
}

// The committed capture replays to the report it holds; with
// CECBRIDGE_WRITE_CAPTURE=1 the capture is made anew from the simulator.
func TestCommittedCaptureReplaysToItsReport(t *testing.T) {
	if os.Getenv("CECBRIDGE_WRITE_CAPTURE") == "1" {
		p, _ := probeAt(t, captureSim(t, committedCMS).URL(), "cms-sk")
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
	_, got := probeAt(t, replay.URL(), "cms-sk")
	// Suggestions decode from JSON as []any; compare them as JSON too.
	sameBehaviour(t, want.Checks, got.Checks)
}
