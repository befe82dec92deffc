package audit_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/audit"
	"github.com/cecbridge/cecbridge/schemas"
)

// An export holds exactly the messages stored in its time range, each as
// stored, and its manifest names them and the digest of the bytes.
func TestExportTimeRangeWithManifest(t *testing.T) {
	d := newDoctored(t, jetstream.StreamConfig{Storage: jetstream.MemoryStorage})
	var seqs []uint64
	for i, w := range []int{1001, 1002, 1003, 1001, 1002} {
		seqs = append(seqs, d.calls(w, uint64(1+i/3), "c"))
	}
	d.put(schemas.Record{Subject: schemas.AgentCallsSubject(tenant, 1009), Body: []byte("not json")})
	stream, err := d.js.Stream(t.Context(), audit.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	stored := func(seq uint64) *jetstream.RawStreamMsg {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	r := audit.Range{StartTime: stored(seqs[1]).Time, Until: stored(seqs[3]).Time, Filter: "cec.evt.acme.>"}

	var out bytes.Buffer
	man, err := audit.Export(t.Context(), d.js, r, audit.FormatNDJSON, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(out.Bytes())
	if man.Count != 3 || man.FirstStreamSeq != seqs[1] || man.LastStreamSeq != seqs[3] || man.Bytes != int64(out.Len()) ||
		man.Digest != "sha256:"+hex.EncodeToString(sum[:]) || man.Format != audit.FormatNDJSON || !man.Since.Equal(r.StartTime) {
		t.Fatalf("manifest %+v for\n%s", man, out.String())
	}
	var got []uint64
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var l audit.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if want := stored(l.StreamSeq); !bytes.Equal(l.Event, want.Data) || l.Subject != want.Subject || !l.Stored.Equal(want.Time) {
			t.Fatalf("line %s is not the stored message %s", sc.Bytes(), want.Data)
		}
		got = append(got, l.StreamSeq)
	}
	if !slices.Equal(got, seqs[1:4]) {
		t.Fatalf("exported %v, want %v", got, seqs[1:4])
	}

	// CSV: a header and one row per message; an undecodable one goes whole
	// into data.
	out.Reset()
	man, err = audit.Export(t.Context(), d.js, audit.Range{StartSeq: seqs[4]}, audit.FormatCSV, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if man.Count != 2 || len(rows) != 3 || !slices.Equal(rows[0], audit.CSVHeader) {
		t.Fatalf("csv %+v:\n%v", man, rows)
	}
	if r := rows[1]; r[2] != schemas.AgentCallsSubject(tenant, 1002) || r[3] != schemas.TypeAgentCalls || r[6] != "update" || r[7] != "2" ||
		r[8] != schemas.EventID(r[2], 1) || r[9] == "" || r[10] == "" || r[11] != `{"op":"update","key":{"tenant":"acme","work_no":1002},"seq":2,"prev_id":"`+r[8]+`","before":{"call_ids":["c-1002-1"]},"after":{"call_ids":["c"]},"detected":{"after_poll":"`+r[9]+`","by_poll":"`+r[10]+`"}}` {
		t.Fatalf("row %q", r)
	}
	if r := rows[2]; r[11] != "not json" || r[3] != "" {
		t.Fatalf("undecodable row %q", r)
	}
	if _, err := audit.Export(t.Context(), d.js, audit.Range{}, "xml", &out, nil); err == nil {
		t.Fatal("format xml accepted")
	}
}
