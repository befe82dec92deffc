//go:build unix

package publisher_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// A disk that fills while the spool is in use: the segment file hits a
// real size limit (RLIMIT_FSIZE) part-way through a record, so the write is
// torn. The torn record is refused, and every accepted record is published
// once. (The spool's own tests check the cut byte by byte.)
//
// The limit is process-wide, so the test runs itself in a child process.
func TestTornSpoolWriteLosesNoAcceptedRecord(t *testing.T) {
	if !publisher.InFileSizeChild() {
		publisher.RunInChild(t, "TestTornSpoolWriteLosesNoAcceptedRecord", "refused at the size limit:")
		return
	}
	const limit = 16 << 10 // bytes per file
	e := newEnv(t, publisher.Config{})
	p := e.newPublisher(t, publisher.Config{BufferEvents: 1, SpoolDir: t.TempDir()})
	w := p.NewWriter(publisher.WriterConfig{})

	restore := publisher.SetFileSizeLimit(t, limit)
	// Records of two sizes, so that a small one may still fit after a big
	// one was refused.
	var accepted []schemas.Record
	refused := 0
	for i := 0; refused < 3 && i < 1000; i++ {
		pad := 40
		if i%3 == 2 {
			pad = 1500
		}
		rec := schematest.CallsRecord("acme", 101+i, 1, strings.Repeat("x", pad))
		schematest.ValidateEvent(t, rec.Body)
		err := w.Emit(context.Background(), rec)
		switch {
		case err == nil:
			accepted = append(accepted, rec)
		case errors.Is(err, publisher.ErrBufferFull) && errors.Is(err, syscall.EFBIG):
			refused++
		default:
			t.Fatalf("Emit: %v", err)
		}
	}
	restore()
	fmt.Printf("refused at the size limit: %d, accepted: %d\n", refused, len(accepted))
	if refused == 0 || len(accepted) < 10 {
		t.Fatalf("the size limit was not reached (%d accepted)", len(accepted))
	}
	if err := p.SpoolWritable(); err != nil {
		t.Errorf("SpoolWritable: %v", err)
	}

	e.run(t, p)
	flush(t, p, 20*time.Second)
	got := readStream(t, e.js, publisher.DefaultEventsStream)
	for _, rec := range accepted {
		if msgs := got[rec.Subject]; len(msgs) != 1 || msgs[0].msgID != rec.ID {
			t.Errorf("accepted record %s: stored %d times", rec.ID, len(msgs))
		}
	}
	if st := p.Stats(); st.Failed != 0 || st.Published != uint64(len(accepted)) {
		t.Errorf("stats %+v, want %d published and none failed", st, len(accepted))
	}
}
