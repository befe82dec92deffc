package audit_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/audit"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// benchStream fills a stream with agents × seqs valid events.
func benchStream(b *testing.B, agents, seqs int) *doctored {
	d := newDoctoredTB(b, jetstream.StreamConfig{Storage: jetstream.FileStorage})
	for seq := 1; seq <= seqs; seq++ {
		for w := range agents {
			rec := schematest.CallsRecord(tenant, 1001+w, uint64(seq), "c")
			if _, err := d.js.PublishAsync(rec.Subject, rec.Body); err != nil {
				b.Fatal(err)
			}
		}
	}
	<-d.js.PublishAsyncComplete()
	return d
}

// BenchmarkVerify compares a verify walk with a bare ordered consumer
// reading the same stream: the cost of the checks over the reading.
func BenchmarkVerify(b *testing.B) {
	const agents, seqs = 200, 100
	d := benchStream(b, agents, seqs)
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			rep, err := audit.Verify(context.Background(), d.js, audit.Range{}, nil)
			if err != nil || !rep.OK() || rep.Events != agents*seqs {
				b.Fatalf("%+v %v", rep, err)
			}
		}
		b.ReportMetric(float64(agents*seqs*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("bare-consumer", func(b *testing.B) {
		for b.Loop() {
			cons, err := d.js.OrderedConsumer(context.Background(), audit.DefaultStream, jetstream.OrderedConsumerConfig{})
			if err != nil {
				b.Fatal(err)
			}
			it, err := cons.Messages(jetstream.PullMaxMessages(4096))
			if err != nil {
				b.Fatal(err)
			}
			for n := 0; n < agents*seqs; n++ {
				if _, err := it.Next(); err != nil {
					b.Fatal(err)
				}
			}
			it.Stop()
		}
		b.ReportMetric(float64(agents*seqs*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
