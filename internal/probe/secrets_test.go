package probe_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/probe"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// wire records every secret and personal value the simulator sends.
type wire struct {
	next http.Handler
	mu   sync.Mutex
	vals map[string]string // value -> kind
}

var wireValue = regexp.MustCompile(`"(AccessToken|sipPwd|password|guid|accountCode)"\s*:\s*"([^"]+)"`)

func (w *wire) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	w.next.ServeHTTP(rec, r)
	w.mu.Lock()
	if g := rec.Header().Get("Set-GUID"); g != "" {
		w.vals[strings.TrimPrefix(g, "JSESSIONID=")] = "guid"
	}
	for _, m := range wireValue.FindAllStringSubmatch(rec.Body.String(), -1) {
		w.vals[m[2]] = m[1]
	}
	w.mu.Unlock()
	for k, v := range rec.Header() {
		rw.Header()[k] = v
	}
	rw.WriteHeader(rec.Code)
	_, _ = rw.Write(rec.Body.Bytes())
}

// No secret (app key and secret, agent password, token, GUID, sipPwd,
// phone password) and no business account reaches the probe's table, its
// JSON, its progress, its log or its capture, even in --slow mode.
func TestNoSecretInProbeOutput(t *testing.T) {
	planted := map[string]string{
		"planted-app-key-7f3a": "app_key", "planted-app-secret-91c2": "app_secret", "planted-agent-pass-55d0": "password",
		"planted-cms-ak-2b81": "cms ak", "planted-cms-sk-6e04": "cms sk",
	}
	sim, err := cecsim.New(cecsim.Config{Agents: 6, LongPollHold: 50 * time.Millisecond,
		AppKey: "planted-app-key-7f3a", AppSecret: "planted-app-secret-91c2", AgentPassword: "planted-agent-pass-55d0",
		GUIDInterval: 100 * time.Millisecond, GUIDTimeout: time.Second, TokenMaxLifetime: time.Second,
		// CMS refuses the configured signing variant first, and echoes
		// the refused Authorization (with the AK) in its answer.
		CMS: cecsim.CMS{AK: "planted-cms-ak-2b81", SK: "planted-cms-sk-6e04", Timestamp: cecsim.C2Millis}})
	if err != nil {
		t.Fatal(err)
	}
	w := &wire{next: sim.Handler(), vals: map[string]string{}}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)

	tc := configsFor("planted", srv.URL)
	tc.AppKey, tc.AppSecret, tc.Monitors[0].Password = "planted-app-key-7f3a", "planted-app-secret-91c2", "planted-agent-pass-55d0"
	tc.CMS = &configs.CMS{URL: srv.URL, AK: "planted-cms-ak-2b81", SK: "planted-cms-sk-6e04", CCID: 1, VDNs: []configs.CMSVDN{{VDN: 1}},
		SignedHeaders: []string{"host"}, Timestamp: configs.CMSTimestampSeconds, Concurrency: 2}
	var progress, logs bytes.Buffer
	p, err := probe.New(tc, probe.Options{Slow: true, GUIDWatch: 300 * time.Millisecond, Progress: &progress,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	report := p.Run(t.Context())
	assertReadOnly(t, sim, 1001, nil)
	if r := row(t, report, "cms"); r.Status != probe.StatusFix {
		t.Errorf("CMS did not refuse a variant first: %+v", r)
	}
	if row(t, report, "expired token").Status != probe.StatusOK {
		t.Errorf("slow mode did not see the expired token: %+v", row(t, report, "expired token"))
	}
	dir := t.TempDir()
	if err := p.WriteCapture(dir); err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := report.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(report)
	places := map[string]string{"table": table.String(), "json": string(js), "progress": progress.String(), "log": logs.String()}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	more, _ := filepath.Glob(filepath.Join(dir, "exchanges", "*.json"))
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		places[f] = string(b)
	}
	w.mu.Lock()
	for v, kind := range w.vals {
		planted[v] = kind
	}
	w.mu.Unlock()
	kinds := map[string]int{}
	for v, kind := range planted {
		kinds[kind]++
		for where, text := range places {
			if strings.Contains(text, v) {
				t.Errorf("%s %q found in %s", kind, v, where)
			}
		}
	}
	for _, kind := range []string{"AccessToken", "guid", "sipPwd", "password", "accountCode", "app_secret"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s seen on the wire: the test would not notice it leaking", kind)
		}
	}
	t.Logf("%d secret and personal values checked in %d places", len(planted), len(places))
}
