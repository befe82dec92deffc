package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// Every event the bridge stores is a CloudEvent that the official Go SDK
// reads through its JetStream binding, in structured mode because of the
// Content-Type header, with the attributes the envelope carries.
func TestCloudEventsSDKDecodesEveryStoredEvent(t *testing.T) {
	e := newEnv(t, 6)
	e.start(t)
	e.events = readStream(t, e.js)
	e.waitSnapshots(t)
	if _, err := e.sim.StartCall(1002); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call seen", func() bool { return len(e.events.calls(t, 1002)) == 2 })
	testwait.Until(t, "a heartbeat", func() bool {
		return len(e.events.on(schemas.BridgeSubject(tenant, schemas.BridgeHeartbeat))) > 0
	})

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cons, err := e.js.OrderedConsumer(ctx, schemas.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(len(e.events.all()), jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	n := 0
	for m := range batch.Messages() {
		n++
		if got := m.Headers().Get("Content-Type"); got != schemas.EnvelopeContentType {
			t.Fatalf("%s: Content-Type %q, want %q", m.Subject(), got, schemas.EnvelopeContentType)
		}
		if format.Lookup(m.Headers().Get("Content-Type")) != format.JSON {
			t.Fatalf("the SDK does not take %q for structured JSON", m.Headers().Get("Content-Type"))
		}
		msg := cejs.NewMessage(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		if enc := msg.ReadEncoding(); enc != binding.EncodingStructured {
			t.Fatalf("%s: binding reads encoding %v, want structured", m.Subject(), enc)
		}
		ev, err := binding.ToEvent(ctx, msg)
		if err != nil {
			t.Fatalf("%s: the SDK cannot decode the event: %v\n%s", m.Subject(), err, m.Data())
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("%s: the SDK finds the event invalid: %v", m.Subject(), err)
		}
		schematest.ValidateEvent(t, m.Data())
		var ours schemas.Event
		if err := json.Unmarshal(m.Data(), &ours); err != nil {
			t.Fatal(err)
		}
		if ev.ID() != ours.ID || ev.Type() != ours.Type || ev.Subject() != m.Subject() || ev.Source() != ours.Source ||
			ev.SpecVersion() != schemas.SpecVersion || !ev.Time().Equal(ours.Time) ||
			ev.DataContentType() != schemas.ContentType || ev.DataSchema() != ours.DataSchema {
			t.Fatalf("SDK attributes differ from the envelope:\nsdk: %s\nours: %+v", ev, ours)
		}
		var sdkData, ourData any
		if err := ev.DataAs(&sdkData); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(ours.Data, &ourData); err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(sdkData)
		b, _ := json.Marshal(ourData)
		if string(a) != string(b) {
			t.Fatalf("%s: SDK data %s, envelope data %s", m.Subject(), a, b)
		}
		types[ev.Type()]++
	}
	if err := batch.Error(); err != nil {
		t.Fatal(err)
	}
	if n < len(e.events.all()) {
		t.Fatalf("decoded %d events, the stream held at least %d", n, len(e.events.all()))
	}
	for _, typ := range []string{schemas.TypeAgentCalls, schemas.TypeAgentSoftphone, schemas.TypePhoneState, schemas.TypeBridgeHeartbeat} {
		if types[typ] == 0 {
			t.Errorf("no %s event decoded (%v)", typ, types)
		}
	}
}
