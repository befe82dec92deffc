package publisher_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

const benchSubjects = 10_000

// benchRecords gives b.N records over benchSubjects subjects: real event
// bodies (one per subject, reused) and the unique IDs of each subject's
// consecutive events. Built before the timer starts.
func benchRecords(b *testing.B) []schemas.Record {
	bodies := make([]schemas.Record, benchSubjects)
	for i := range bodies {
		bodies[i] = schematest.CallsRecord("acme", 101+i, 2, fmt.Sprintf("17000000%02d-%d", i%100, i))
	}
	recs := make([]schemas.Record, b.N)
	for i := range recs {
		r := bodies[i%benchSubjects]
		r.Seq = uint64(i/benchSubjects) + 1
		r.ID = schemas.EventID(r.Subject, r.Seq)
		recs[i] = r
	}
	return recs
}

func benchEnv(b *testing.B) (*natstest.Server, *nats.Conn, jetstream.JetStream) {
	s := natstest.RunServer(b)
	nc := s.Connect(b)
	js := natstest.JetStream(b, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := publisher.Provision(ctx, js, publisher.Config{}); err != nil {
		b.Fatal(err)
	}
	return s, nc, js
}

func BenchmarkPublish(b *testing.B) {
	_, _, js := benchEnv(b)
	recs := benchRecords(b)
	p, err := publisher.New(js, publisher.Config{BufferEvents: b.N + 1})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	w := p.NewWriter(publisher.WriterConfig{Term: "bench"})

	b.ResetTimer()
	start := time.Now()
	for _, r := range recs {
		if err := w.Emit(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer fcancel()
	if err := p.Flush(fctx); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	if st := p.Stats(); st.Published != uint64(b.N) || st.Conflicts+st.Failed != 0 {
		b.Fatalf("stats %+v", st)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
}

// BenchmarkBareAsync is the baseline: jetstream PublishAsync of the same
// payloads with unique Msg-Ids, the same window (1024), no ordering or
// expected-sequence checks.
func BenchmarkBareAsync(b *testing.B) {
	benchBare(b, func(js jetstream.JetStream, _ int, r schemas.Record, _ uint64) error {
		_, err := js.PublishAsync(r.Subject, r.Body, jetstream.WithMsgID(r.ID), jetstream.WithStallWait(time.Minute))
		return err
	})
}

// BenchmarkBareAsyncSameHeaders publishes as BenchmarkBareAsync does, but
// with every header the publisher sends (the term-qualified id, the
// expected last subject sequence, the content type): what is left between
// it and BenchmarkPublish is the publisher's own cost, what is between it
// and BenchmarkBareAsync is the server's work on those headers.
func BenchmarkBareAsyncSameHeaders(b *testing.B) {
	benchBare(b, func(js jetstream.JetStream, i int, r schemas.Record, base uint64) error {
		// The expected last subject sequence is a stream sequence: on the
		// emptied stream, record i follows record i-benchSubjects (same
		// subject), stored at base+i-benchSubjects+1.
		var expected uint64
		if i >= benchSubjects {
			expected = base + uint64(i-benchSubjects) + 1
		}
		msg := &nats.Msg{Subject: r.Subject, Data: r.Body, Header: nats.Header{
			jetstream.MsgIDHeader:               []string{r.ID + ".8490ec31"},
			jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(expected, 10)},
			"Content-Type":                      []string{schemas.EnvelopeContentType},
		}}
		_, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute))
		return err
	})
}

// benchBare times publishing b.N records with send, straight through the
// client (window 1024), on an emptied events stream whose last sequence
// before the first record is base. Every record must be stored: a publish
// the server refused would otherwise look fast.
func benchBare(b *testing.B, send func(js jetstream.JetStream, i int, r schemas.Record, base uint64) error) {
	_, nc, _ := benchEnv(b)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(publisher.DefaultMaxInFlight))
	if err != nil {
		b.Fatal(err)
	}
	recs := benchRecords(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, schemas.EventsStream)
	if err == nil {
		err = stream.Purge(ctx)
	}
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = stream.Info(ctx)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i, r := range recs {
		if err := send(js, i, r, info.State.LastSeq); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("acks did not complete")
	}
	el := time.Since(start)
	b.StopTimer()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if info, err = stream.Info(ctx); err != nil {
		b.Fatal(err)
	}
	if info.State.Msgs != uint64(len(recs)) {
		b.Fatalf("%d messages stored, want %d", info.State.Msgs, len(recs))
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
}
