package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/audit"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

func auditStream(t *testing.T) (string, jetstream.JetStream) {
	t.Helper()
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv.Connect(t))
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: schemas.EventsStream, Subjects: []string{schemas.AllEvents},
		Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	return srv.URL(), js
}

func TestAuditVerifyCommand(t *testing.T) {
	url, js := auditStream(t)
	for _, rec := range []schemas.Record{
		schematest.CallsRecord("dev", 1001, 1), schematest.CallsRecord("dev", 1001, 2, "a"),
		schematest.CallsRecord("dev", 1002, 1), schematest.CallsRecord("dev", 1002, 3, "b"), // a hole
	} {
		if _, err := js.Publish(t.Context(), rec.Subject, rec.Body); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := runCmd(t, "audit", "verify", "--server", url)
	if !errors.Is(err, errDefects) || !strings.Contains(out, "cec.evt.dev.agent.1002.calls\n  #4        hole          seqs 2 missing") ||
		!strings.Contains(out, "1 defects, 0 retention cuts: NOT WHOLE") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	out, _, err = runCmd(t, "audit", "verify", "dev.agent.1001.>", "--server", url, "--json")
	var rep audit.Report
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK() || rep.Events != 2 || rep.Filter != "cec.evt.dev.agent.1001.>" {
		t.Fatalf("verify --json of a clean subject: %v\n%s", err, out)
	}
	out, _, err = runCmd(t, "audit", "verify", "--server", url, "--seq", "4")
	if err != nil || !strings.Contains(out, "1 events on 1 subjects, stream seq 4-4") {
		t.Fatalf("verify --seq: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"audit"}, {"audit", "nope"}, {"audit", "verify", "--since", "1h", "--seq", "2"}, {"audit", "verify", "--since", "yesterday"},
		{"audit", "verify", "a", "b"}, {"audit", "export", "--since", "1h"}, {"audit", "export", "--since", "1h", "--until", "0s", "--format", "xml"},
		{"audit", "verify", "--until", "1h"},
	} {
		if _, _, err := runCmd(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v", args, err)
		}
	}
	_, _, err = runCmd(t, "audit", "verify", "--server", "nats://auditor:s3cret-pw@127.0.0.1:1")
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), "auditor:xxxxx@") {
		t.Fatalf("unreachable server: %v", err)
	}
}

func TestAuditExportCommand(t *testing.T) {
	url, js := auditStream(t)
	for seq := uint64(1); seq <= 3; seq++ {
		rec := schematest.CallsRecord("dev", 1001, seq, "c")
		if _, err := js.Publish(t.Context(), rec.Subject, rec.Body); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "range.csv")
	_, _, err := runCmd(t, "audit", "export", "--server", url, "--since", "1h", "--until", "2099-01-01T00:00:00Z", "dev.>",
		"--format", "csv", "--out", file)
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var man audit.Manifest
	mb, err := os.ReadFile(file + ".manifest.json")
	if err != nil || json.Unmarshal(mb, &man) != nil {
		t.Fatalf("manifest: %v\n%s", err, mb)
	}
	sum := sha256.Sum256(body)
	if man.Count != 3 || man.FirstStreamSeq != 1 || man.LastStreamSeq != 3 || man.Digest != "sha256:"+hex.EncodeToString(sum[:]) ||
		strings.Count(string(body), "\n") != 4 || man.Filter != "cec.evt.dev.>" {
		t.Fatalf("manifest %+v for\n%s", man, body)
	}
	// To standard output, with the manifest on standard error.
	out, errOut, err := runCmd(t, "audit", "export", "--server", url, "--since", "1h", "--until", "0s")
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(errOut, `"count": 3`) {
		t.Fatalf("ndjson: %v\n%s\n%s", err, out, errOut)
	}
}
