package publisher

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

func testSpool(t *testing.T) (*spool, *testbuf.Buffer) {
	t.Helper()
	var logs testbuf.Buffer
	s, err := openSpool(t.TempDir(), 1<<30, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.reset)
	return s, &logs
}

func spoolRecord(t *testing.T, workNo int) schemas.Record {
	t.Helper()
	rec := schematest.CallsRecord("acme", workNo, 1, fmt.Sprintf("call-%d", workNo))
	schematest.ValidateEvent(t, rec.Body)
	return rec
}

func mustAppend(t *testing.T, s *spool, recs ...schemas.Record) {
	t.Helper()
	for _, r := range recs {
		if err := s.append(r); err != nil {
			t.Fatalf("append %s: %v", r.ID, err)
		}
	}
}

// readBack reads every record left and the number lost on the way.
func readBack(t *testing.T, s *spool) ([]schemas.Record, int) {
	t.Helper()
	var got []schemas.Record
	lost := 0
	for s.count > 0 {
		rec, l, ok := s.next()
		lost += l
		if !ok {
			break
		}
		got = append(got, rec)
	}
	return got, lost
}

func sameRecords(t *testing.T, got, want []schemas.Record) {
	t.Helper()
	ids := func(rs []schemas.Record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("read back %v, want %v", ids(got), ids(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Body, want[i].Body) || got[i].Subject != want[i].Subject || got[i].Seq != want[i].Seq {
			t.Fatalf("record %d read back changed", i)
		}
	}
}

func fileSize(t *testing.T, s *spool, seg int) int64 {
	t.Helper()
	fi, err := os.Stat(segName(s.dir, seg))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// A write that fails part-way, whether it reports an error or only a
// short count, is refused and cut off; the next record follows the last
// complete one in the same segment, and nothing accepted is lost.
func TestTornWriteIsCutAndTheSegmentGoesOn(t *testing.T) {
	cases := []struct {
		name  string
		write func(f *os.File, b []byte) (int, error)
	}{
		{"short write", func(f *os.File, b []byte) (int, error) { return f.Write(b[:len(b)/2]) }},
		{"error after part", func(f *os.File, b []byte) (int, error) {
			n, _ := f.Write(b[:len(b)-3])
			return n, syscall.ENOSPC
		}},
		{"error before any byte", func(*os.File, []byte) (int, error) { return 0, syscall.ENOSPC }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := testSpool(t)
			a, b, torn, d := spoolRecord(t, 101), spoolRecord(t, 102), spoolRecord(t, 103), spoolRecord(t, 104)
			mustAppend(t, s, a, b)
			s.write = c.write
			if err := s.append(torn); err == nil {
				t.Fatal("a torn write was accepted")
			}
			if s.writeErr == nil {
				t.Error("the failed write is not remembered for the readiness check")
			}
			if got, want := fileSize(t, s, s.wseg), recordSize(a)+recordSize(b); got != want {
				t.Fatalf("segment is %d bytes after the failed write, want %d (cut back)", got, want)
			}
			s.write = writeFile
			mustAppend(t, s, d)
			if s.writeErr != nil || len(s.segs) != 1 {
				t.Fatalf("after a good write: err %v, %d segments", s.writeErr, len(s.segs))
			}
			got, lost := readBack(t, s)
			if lost != 0 {
				t.Errorf("%d records lost", lost)
			}
			sameRecords(t, got, []schemas.Record{a, b, d})
		})
	}
}

// When even the cut fails, the segment is closed with the torn bytes
// after its last complete record: the reader stops there and the next
// record goes to a new segment.
func TestTornWriteThatCannotBeCutClosesTheSegment(t *testing.T) {
	s, _ := testSpool(t)
	a, torn, c := spoolRecord(t, 101), spoolRecord(t, 102), spoolRecord(t, 103)
	mustAppend(t, s, a)
	s.write = func(f *os.File, b []byte) (int, error) {
		n, _ := f.Write(b[:len(b)/2])
		f.Close() // so that Truncate fails too
		return n, syscall.EIO
	}
	if err := s.append(torn); err == nil {
		t.Fatal("a torn write was accepted")
	}
	if got := fileSize(t, s, s.segs[0].n); got <= recordSize(a) {
		t.Fatalf("segment is %d bytes; the test needs the torn bytes left in it", got)
	}
	s.write = writeFile
	mustAppend(t, s, c)
	if len(s.segs) != 2 {
		t.Fatalf("%d segments, want the torn one closed and a new one", len(s.segs))
	}
	got, lost := readBack(t, s)
	if lost != 0 {
		t.Errorf("%d records lost", lost)
	}
	sameRecords(t, got, []schemas.Record{a, c})
}

// Bytes that changed on disk: a record whose checksum fails is skipped,
// counted and logged, and the records after it are still read; a length
// that cannot be trusted, or a segment shorter than written, loses the
// rest of that segment only.
func TestCorruptSpoolRecordsAreSkippedNotTheSpool(t *testing.T) {
	corrupt := func(t *testing.T, s *spool, seg int, off int64, b []byte) {
		t.Helper()
		f, err := os.OpenFile(segName(s.dir, seg), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name     string
		damage   func(t *testing.T, s *spool, first int, a, b schemas.Record)
		lost     int
		skipsB   bool
		logWords string
	}{
		{"a flipped body byte", func(t *testing.T, s *spool, first int, a, b schemas.Record) {
			corrupt(t, s, first, recordSize(a)+recordSize(b)-5, []byte{'#'})
		}, 1, true, "corrupt record skipped"},
		{"a length past the segment", func(t *testing.T, s *spool, first int, a, _ schemas.Record) {
			corrupt(t, s, first, recordSize(a), []byte{0x7f, 0xff, 0xff, 0xff})
		}, 2, true, "segment unreadable"},
		{"a segment cut short", func(t *testing.T, s *spool, first int, a, _ schemas.Record) {
			if err := os.Truncate(segName(s.dir, first), recordSize(a)+10); err != nil {
				t.Fatal(err)
			}
		}, 2, true, "segment unreadable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, logs := testSpool(t)
			a, b, c2, d := spoolRecord(t, 101), spoolRecord(t, 102), spoolRecord(t, 103), spoolRecord(t, 104)
			mustAppend(t, s, a, b, c2)
			first := s.segs[0].n
			if err := s.roll(); err != nil {
				t.Fatal(err)
			}
			mustAppend(t, s, d)
			c.damage(t, s, first, a, b)
			got, lost := readBack(t, s)
			want := []schemas.Record{a, c2, d}
			if c.lost == 2 {
				want = []schemas.Record{a, d}
			}
			if lost != c.lost {
				t.Errorf("lost %d, want %d", lost, c.lost)
			}
			sameRecords(t, got, want)
			if s.count != 0 || s.bytes != 0 {
				t.Errorf("spool accounting off after reading: count %d bytes %d", s.count, s.bytes)
			}
			if !strings.Contains(logs.String(), c.logWords) {
				t.Errorf("log lacks %q:\n%s", c.logWords, logs.String())
			}
		})
	}
}

// SpoolWritable reports a directory that takes no file after a failed
// write, and clears once the directory takes one again. (The start-up probe
// is tested under a real size limit.)
func TestSpoolWritableReportsTheDirectory(t *testing.T) {
	dir := t.TempDir()
	p, err := New(nil, Config{SpoolDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SpoolWritable(); err != nil {
		t.Fatalf("a fresh directory: %v", err)
	}
	// Replace the directory by a file: no file can be created in it, root
	// or not.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := spoolTestAppend(t, p); err == nil {
		t.Fatal("a record was spooled into a directory that is a file")
	}
	if err := p.SpoolWritable(); !errors.Is(err, ErrSpoolUnwritable) {
		t.Fatalf("SpoolWritable = %v, want ErrSpoolUnwritable", err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := p.SpoolWritable(); err != nil {
		t.Fatalf("after the directory came back: %v", err)
	}
}

// spoolTestAppend puts one record straight into p's spool.
func spoolTestAppend(t *testing.T, p *Publisher) error {
	t.Helper()
	rec := spoolRecord(t, 199)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sp.append(rec)
}

// A corrupt record in the spool costs that record only: the publisher
// counts it as failed, Flush does not wait for it, and the records around
// it are published.
func TestPublisherSkipsACorruptSpoolRecord(t *testing.T) {
	srv := natstest.RunServer(t)
	js := natstest.JetStream(t, srv.Connect(t))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := Provision(ctx, js, Config{}); err != nil {
		t.Fatal(err)
	}
	p, err := New(js, Config{BufferEvents: 1, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	wr := p.NewWriter(WriterConfig{})
	var recs []schemas.Record
	for w := 101; w <= 104; w++ {
		rec := spoolRecord(t, w)
		if err := wr.Emit(ctx, rec); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	// recs[0] waits in memory, the others in the spool: damage recs[2].
	f, err := os.OpenFile(segName(p.sp.dir, p.sp.segs[0].n), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{'#'}, recordSize(recs[1])+recordSize(recs[2])-5); err != nil {
		t.Fatal(err)
	}
	f.Close()

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	flushErr := p.Flush(ctx)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if flushErr != nil {
		t.Fatalf("Flush: %v (stats %+v)", flushErr, p.Stats())
	}
	st, err := js.Stream(ctx, DefaultEventsStream)
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs {
		m, err := st.GetLastMsgForSubject(ctx, rec.Subject)
		switch {
		case i == 2 && !errors.Is(err, jetstream.ErrMsgNotFound):
			t.Errorf("the corrupt record was published: %v", err)
		case i != 2 && (err != nil || m.Header.Get(jetstream.MsgIDHeader) != rec.ID):
			t.Errorf("record %d not published: %v", i, err)
		}
	}
	if s := p.Stats(); s.Failed != 1 || s.Published != 3 || s.Spooled != 0 {
		t.Errorf("stats %+v, want 3 published and 1 failed", s)
	}
}

// ReadSpool reads a dead publisher's spool as it lies: every complete
// record in order, a torn tail counted, nothing changed on disk.
func TestReadSpoolReadsWhatADeadPublisherLeft(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir, 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var want []schemas.Record
	for w := 101; w <= 103; w++ {
		rec := spoolRecord(t, w)
		if err := sp.append(rec); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec)
	}
	// A crash in the middle of a fourth append.
	torn := spoolRecord(t, 104)
	f, err := os.OpenFile(segName(dir, sp.segs[len(sp.segs)-1].n), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	var frame [recFrame]byte
	binary.BigEndian.PutUint32(frame[:4], uint32(recordSize(torn)-recFrame))
	if _, err := f.Write(append(frame[:], torn.Subject...)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, tornN, err := ReadSpool(dir)
	if err != nil || tornN != 1 || len(got) != 3 {
		t.Fatalf("ReadSpool: %d records, %d torn, %v", len(got), tornN, err)
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Subject != want[i].Subject || string(got[i].Body) != string(want[i].Body) {
			t.Fatalf("record %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Reading it twice gives the same: nothing was consumed.
	if again, _, _ := ReadSpool(dir); len(again) != 3 {
		t.Fatalf("second read: %d records", len(again))
	}
}
