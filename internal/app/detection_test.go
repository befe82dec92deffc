package app

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cecbridge/cecbridge/schemas"
)

type nopSink struct{}

func (nopSink) Emit(context.Context, schemas.Record) error { return nil }

func changeRecord(t testing.TB, after *time.Time, by time.Time) schemas.Record {
	t.Helper()
	data, _ := json.Marshal(schemas.Change[schemas.AgentCalls]{Op: schemas.OpUpdate,
		Key: schemas.Key{Tenant: "acme", WorkNo: 1522}, Seq: 2, After: &schemas.AgentCalls{CallIDs: []string{"1700000000-42"}},
		Detected: schemas.Detected{AfterPoll: after, ByPoll: by}})
	body, err := json.Marshal(schemas.Event{SpecVersion: "1.0", ID: "x", Subject: "cec.evt.acme.agent.1522.calls", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return schemas.Record{Subject: "cec.evt.acme.agent.1522.calls", Body: body}
}

// The window is read from the encoded event; a snapshot has none.
func TestDetectionWindowFromTheEncodedEvent(t *testing.T) {
	by := time.Date(2026, 3, 1, 9, 30, 2, 250_000_000, time.UTC)
	after := by.Add(-1250 * time.Millisecond)
	if w, ok := detectionWindow(changeRecord(t, &after, by).Body); !ok || w != 1250*time.Millisecond {
		t.Errorf("window %v %v", w, ok)
	}
	if _, ok := detectionWindow(changeRecord(t, nil, by).Body); ok {
		t.Error("a snapshot gave a window")
	}
}

// BenchmarkDetectionSink compares Emit through the detection sink with
// Emit on the sink it wraps.
func BenchmarkDetectionSink(b *testing.B) {
	by := time.Now().UTC()
	after := by.Add(-time.Second)
	rec := changeRecord(b, &after, by)
	ctx := context.Background()
	b.Run("bare", func(b *testing.B) {
		var s nopSink
		for b.Loop() {
			_ = s.Emit(ctx, rec)
		}
	})
	b.Run("detection", func(b *testing.B) {
		s := newDetection(prometheus.NewRegistry()).sink("acme", nopSink{})
		for b.Loop() {
			_ = s.Emit(ctx, rec)
		}
	})
}
