package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// stored builds an entity event as the history reader returns it.
func stored(subject string, seq uint64, body string, streamSeq uint64) observed {
	id := schemas.EventID(subject, seq)
	prev := ""
	if seq > 1 {
		prev = schemas.EventID(subject, seq-1)
	}
	return observed{Subject: subject, Seq: seq, ID: id, PrevID: prev, MsgID: id + ".t1", StreamSeq: streamSeq, Digest: digest([]byte(body))}
}

func TestIntegrityFindsDuplicatesForksHolesAndRepeats(t *testing.T) {
	a, b, c := "cec.evt.t.agent.1.calls", "cec.evt.t.agent.2.calls", "cec.evt.t.agent.3.calls"
	events := []observed{
		stored(a, 1, "a1", 1),
		stored(a, 2, "a2", 2),
		stored(a, 2, "a2", 3), // the same event stored twice
		stored(b, 1, "b1", 4),
		stored(b, 2, "b2", 5),
		stored(b, 2, "b2-other", 6), // a fork: seq 2 with another body
		stored(c, 1, "c1", 7),
		stored(c, 3, "c3", 8), // a hole
	}
	in := checkIntegrity(events)
	if in.DuplicateIDs != 2 || in.Identical != 1 {
		t.Errorf("duplicate ids %d (identical %d), want 2 (1): %v", in.DuplicateIDs, in.Identical, in.Samples)
	}
	if in.Forks != 1 {
		t.Errorf("forks %d, want 1: %v", in.Forks, in.Samples)
	}
	if in.Repeats != 2 || in.Holes != 1 {
		t.Errorf("repeats %d holes %d, want 2 and 1: %v", in.Repeats, in.Holes, in.Samples)
	}
	// seq 2 stored again after seq 2, and seq 3 after seq 1, name an event
	// other than the one stored before them.
	if in.BrokenLinks != 3 {
		t.Errorf("broken links %d, want 3", in.BrokenLinks)
	}
	if in.Subjects != 3 || in.BadIDs != 0 {
		t.Errorf("subjects %d bad ids %d", in.Subjects, in.BadIDs)
	}
	clean := checkIntegrity([]observed{stored(a, 1, "x", 1), stored(b, 1, "y", 2), stored(a, 2, "z", 3)})
	if clean.DuplicateIDs+clean.Forks+clean.Holes+clean.Repeats+clean.BrokenLinks != 0 {
		t.Errorf("a clean history scored %+v", clean)
	}
}

func TestStaleWritesByTerm(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(streamSeq uint64) time.Time { return t0.Add(time.Duration(streamSeq) * time.Second) }
	s := "cec.evt.t.agent.1.calls"
	ev := func(seq, streamSeq uint64, term string) observed {
		o := stored(s, seq, "x", streamSeq)
		o.MsgID, o.Stored = o.ID+"."+term, at(streamSeq)
		return o
	}
	h := &history{
		Entity: []observed{ev(1, 1, "old"), ev(2, 2, "old"), ev(3, 3, "new"), ev(4, 5, "old"), ev(5, 6, "new")},
		Heartbeats: []heartbeatMsg{
			{Instance: "vm/20", ID: "hb1", MsgID: "hb1.new", StreamSeq: 4, Stored: at(4)},
		},
	}
	// The holder writing "old" was paused after stream seq 2; the standby
	// took over before seq 3.
	pause := pauseRecord{stopped: at(2).Add(time.Second / 2), takeover: at(2).Add(3 * time.Second / 4)}
	sw := staleByTerm(h, map[string]string{"new": "b#1"}, []pauseRecord{pause})
	if !sw.ByTerm || sw.Stale != 1 {
		t.Fatalf("stale %d (by term %v), want 1: %v", sw.Stale, sw.ByTerm, sw.Samples)
	}
	if len(sw.Terms) != 2 || sw.Terms[0].Term != "old" || sw.Terms[1].Writer != "vm/20" || sw.Terms[1].LoggedBy != "b#1" || sw.Terms[0].Stale != 1 {
		t.Errorf("terms %+v", sw.Terms)
	}
	if sw.PausedWrites != 1 || len(sw.PausedTerms) != 1 || sw.PausedTerms[0] != "old" {
		t.Errorf("paused term %v wrote %d after the takeover, want old and 1", sw.PausedTerms, sw.PausedWrites)
	}
	if _, ok := termOf("abc", "abc"); ok {
		t.Error("an id without a suffix has a term")
	}
	bare := stored(s, 1, "x", 1)
	bare.MsgID = bare.ID
	none := staleByTerm(&history{Entity: []observed{bare}}, nil, nil)
	if none.ByTerm {
		t.Error("ids without terms counted as attributed")
	}
}

func TestFalseStatesAndFinalStateAgainstTimelines(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := world{
		agents: map[int]cecsim.AgentInfo{1001: {WorkNo: 1001, SIPAccount: "88881001", AccountCode: "acct1001"}},
		phones: map[string]int{"88881001": 0},
	}
	truth := []cecsim.Change{
		{Seq: 1, At: at(1000), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "X"},
		{Seq: 2, At: at(3000), Kind: cecsim.KindCallRemoved, WorkNo: 1001, CallID: "X"},
		{Seq: 3, At: at(4000), Kind: cecsim.KindAgentAdded, WorkNo: 1002},
		{Seq: 4, At: at(5000), Kind: cecsim.KindPhoneStatus, PhoneNum: "88881001", Before: "0", After: "1"},
	}
	tl := buildTimelines(w, truth)
	calls := func(seq uint64, ids []string, from, by int) observed {
		e := callEvent(1001, seq, schemas.OpUpdate, nil, ids, at(by))
		if from >= 0 {
			e.AfterPoll = at(from)
		}
		return e
	}
	softphone := observed{Subject: schemas.AgentSoftphoneSubject(benchTenant, 1002), Type: schemas.TypeAgentSoftphone,
		Op: schemas.OpCreate, Seq: 1, WorkNo: 1002, After: []string{"88881002|"}, ByPoll: at(4500)}
	events := []observed{
		calls(1, []string{}, -1, 500),
		calls(2, []string{"X"}, 500, 1500),  // true in (0.5 s, 1.5 s]
		calls(3, []string{"Y"}, 1500, 2500), // Y never existed: false
		calls(4, []string{"X"}, 3500, 4000), // X had ended by 3.5 s: false
		calls(5, []string{}, 2500, 3200),    // true
		softphone,                           // an added agent's softphone: any value is true
	}
	fs := falseStates(tl, events)
	if len(fs) != 2 || !strings.Contains(fs[0], "seq 3") || !strings.Contains(fs[1], "seq 4") {
		t.Fatalf("false states %q, want seq 3 and seq 4", fs)
	}
	// At 6 s: the calls are empty (true), the phone still says 0 (it has
	// been 1 since 5 s: within a 2 s tolerance it was 0, outside not), and
	// agent 1002's calls were never described.
	phone := observed{Subject: schemas.PhoneStateSubject(benchTenant, "88881001"), Type: schemas.TypePhoneState,
		Op: schemas.OpSnapshot, Seq: 1, Phone: "88881001", After: []string{"0"}, ByPoll: at(100)}
	own := observed{Subject: schemas.AgentSoftphoneSubject(benchTenant, 1001), Type: schemas.TypeAgentSoftphone,
		Op: schemas.OpSnapshot, Seq: 1, WorkNo: 1001, After: []string{"88881001|acct1001"}, ByPoll: at(100)}
	final := append(events[:1:1], events[4], softphone, phone, own)
	if got := finalMismatches(tl, final, at(6000), 2*time.Second); len(got) != 1 || !strings.Contains(got[0], "c1002") {
		t.Errorf("final mismatches at 6 s with 2 s tolerance: %q, want only c1002 (never described)", got)
	}
	if got := finalMismatches(tl, final, at(8000), 2*time.Second); len(got) != 2 {
		t.Errorf("final mismatches at 8 s: %q, want the phone and c1002", got)
	}
}

func TestScoreExcusedOutageAndUnstored(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	truth := []cecsim.Change{
		{Seq: 1, At: at(10), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "A"}, // inside an excused span
		{Seq: 2, At: at(13), Kind: cecsim.KindCallRemoved, WorkNo: 1001, CallID: "A"},
		{Seq: 3, At: at(30), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "B"}, // in the outage, seen only in a spool
		{Seq: 4, At: at(34), Kind: cecsim.KindCallRemoved, WorkNo: 1001, CallID: "B"},
		{Seq: 5, At: at(40), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "C"}, // in the outage, missed
		{Seq: 6, At: at(44), Kind: cecsim.KindCallRemoved, WorkNo: 1001, CallID: "C"},
		{Seq: 7, At: at(50), Kind: cecsim.KindCallAdded, WorkNo: 1001, CallID: "D"}, // lost with a killed process's memory
		{Seq: 8, At: at(53), Kind: cecsim.KindCallRemoved, WorkNo: 1001, CallID: "D"},
		// A phone suspended and back inside an excused span: neither its
		// excursion nor its return is a change the bridge could see.
		{Seq: 9, At: at(10), Kind: cecsim.KindPhoneStatus, PhoneNum: "88881001", Before: "0", After: "1"},
		{Seq: 10, At: at(13), Kind: cecsim.KindPhoneStatus, PhoneNum: "88881001", Before: "1", After: "0"},
	}
	events := []observed{
		callEvent(1001, 1, schemas.OpSnapshot, nil, []string{}, at(1)),
		{Subject: schemas.PhoneStateSubject(benchTenant, "88881001"), Type: schemas.TypePhoneState, Op: schemas.OpSnapshot,
			Seq: 1, Phone: "88881001", After: []string{"0"}, ByPoll: at(1)},
	}
	unstored := []observed{
		callEvent(1001, 2, schemas.OpUpdate, []string{}, []string{"B"}, at(30.5)),
		callEvent(1001, 3, schemas.OpUpdate, []string{"B"}, []string{}, at(34.5)),
	}
	s := score(scoreInput{
		Truth: truth, Events: events, WindowStart: t0, WindowEnd: at(100),
		CallsInterval: time.Second, IdleInterval: time.Second, ActiveWindow: time.Hour,
		RosterInterval: time.Second, PhonesInterval: time.Second,
		Excused:  []span{{From: at(9), To: at(14)}},
		Lost:     []lostSpan{{span: span{From: at(49), To: at(51)}, Until: at(55)}},
		Outage:   span{From: at(25), To: at(48)},
		Unstored: unstored,
	})
	c := s.Calls
	if c.Long != 4 || c.LongSeen != 2 || c.LongExcused != 4 || c.MissedExcused != 4 {
		t.Errorf("long %d seen %d excused %d missed excused %d, want 4 2 4 4", c.Long, c.LongSeen, c.LongExcused, c.MissedExcused)
	}
	if c.OutageLong != 4 || c.OutageLongSeen != 2 || s.UnstoredSeen != 2 {
		t.Errorf("outage long %d seen %d, unstored seen %d; want 4 2 2", c.OutageLong, c.OutageLongSeen, s.UnstoredSeen)
	}
	if c.MissedOther != 2 {
		t.Errorf("missed other %d, want C's two changes", c.MissedOther)
	}
	if p := s.Groups[groupPhone]; p.Long != 0 || p.LongExcused != 2 || p.MissedOther != 0 {
		t.Errorf("phone group %+v, want the excursion and the return both excused", p)
	}
}

func TestLongestGapAndVisible(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	polls := []slotPoll{{at(1), "a"}, {at(2), "a"}, {at(7), "b"}, {at(8), "b"}}
	if g, from := longestGap(polls, at(0), at(10)); g != 5*time.Second || !from.Equal(at(2)) {
		t.Errorf("gap %s from %s, want 5s from 2s", g, from.Sub(t0))
	}
	if p, ok := firstPollAfter(polls, at(2.5)); !ok || p.slot != "b" {
		t.Errorf("first poll after 2.5s: %+v %v", p, ok)
	}
	ex := []span{{From: at(3), To: at(5)}, {From: at(4), To: at(6)}}
	if v := longestVisible(at(0), at(10), ex); v != 4*time.Second {
		t.Errorf("longest visible %s, want 4s", v)
	}
	if v := longestVisible(at(3.5), at(5.5), ex); v != 0 {
		t.Errorf("longest visible inside excused time %s, want 0", v)
	}
}

func TestScanLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.log")
	lines := `{"time":"2026-01-02T03:04:05.5Z","level":"INFO","msg":"lease term started; polling","term":7}
{"time":"2026-01-02T03:04:06Z","level":"WARN","msg":"nats disconnected","err":"x"}
{"time":"2026-01-02T03:04:07Z","level":"WARN","msg":"nats disconnected","err":"y"}
panic: something
`
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := scanLog(path)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC)
	if len(l.Acquired) != 1 || !l.Acquired[0].Equal(want) || !l.Terms["7"].Equal(want) {
		t.Errorf("acquired %v terms %v", l.Acquired, l.Terms)
	}
	if l.Counts["WARN nats disconnected"] != 2 || l.NotJSON != 1 {
		t.Errorf("counts %v, not JSON %d", l.Counts, l.NotJSON)
	}
}

func TestMergeMaps(t *testing.T) {
	dst := map[string]any{"lease": map[string]any{"ttl": "4s"}, "log": map[string]any{"level": "info"}}
	mergeMaps(dst, map[string]any{"lease": map[string]any{"name": "x"}, "log": "replaced"})
	lease := dst["lease"].(map[string]any)
	if lease["ttl"] != "4s" || lease["name"] != "x" || dst["log"] != "replaced" {
		t.Errorf("merged %v", dst)
	}
}

// The drill's NATS server is a real process: stopped, or killed as in a
// crash, and started again on the same port and store, it still holds every
// message it acknowledged.
func TestNATSProcessRestartsOnItsStore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	for _, how := range []string{"stop", "crash"} {
		t.Run(how, func(t *testing.T) {
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			port, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			procs := &procSet{}
			t.Cleanup(procs.killAll)
			n := &natsProc{procs: procs, exe: exe, port: port, store: filepath.Join(dir, "store"), logPath: filepath.Join(dir, "nats.log")}
			if err := n.start(t.Context()); err != nil {
				t.Fatal(err)
			}
			_, js := connectJS(t, n.url())
			if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage}); err != nil {
				t.Fatal(err)
			}
			const acked = 500
			for i := range acked {
				if _, err := js.PublishAsync("s."+strconv.Itoa(i), []byte("kept")); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-t.Context().Done():
				t.Fatal("acks not in")
			}
			if how == "crash" {
				n.crash()
			} else {
				n.stop()
			}
			if !n.p.exited() {
				t.Fatalf("nats process still running after %s", how)
			}
			if err := n.start(t.Context()); err != nil {
				t.Fatal(err)
			}
			var msgs uint64
			err = waitUntil(t.Context(), 20*time.Second, "the messages back", func() bool {
				s, err := js.Stream(t.Context(), "S")
				if err != nil {
					return false
				}
				info, err := s.Info(t.Context())
				if err != nil {
					return false
				}
				msgs = info.State.Msgs
				return msgs == acked
			})
			if err != nil {
				t.Fatalf("after the %s: %d of %d acknowledged messages: %v", how, msgs, acked, err)
			}
		})
	}
}

// TestChaosDrillShort runs the short chaos drill for real: two cecbridge
// processes with leases, a nats-server process, the simulator; kills, a
// 15 s NATS outage with a full disk and a kill in it, a SIGSTOP past the
// lease TTL. It asserts every target of issue 9.
func TestChaosDrillShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	var r ChaosResult
	out := runScenario(t, []string{"--scenario", "chaos-short"}, &r)
	if len(r.Targets) < 10 {
		t.Fatalf("%d targets scored, want every one:\n%s", len(r.Targets), out)
	}
	for _, tg := range r.Targets {
		if !tg.Met {
			t.Errorf("%s: got %.4g, want %s", tg.Name, tg.Got, tg.Want)
		}
	}
	if t.Failed() {
		t.Logf("drill report:\n%s", out)
	}
}
