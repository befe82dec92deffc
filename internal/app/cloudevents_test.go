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

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// Every event the bridge stores is a CloudEvent that the official Go SDK
// reads through its JetStream binding, in structured mode because of the
// Content-Type header, with the attributes the envelope carries.
func TestCloudEventsSDKDecodesEveryStoredEvent(t *testing.T) {
	e := newEnv(t, 6)
	// With a CMS sweep the bridge publishes every type there is: the
	// sweep's calls_v2 and agent.state besides the per-agent ones.
	tc := &e.cfg.Tenants[0]
	tc.CMS = &configs.CMS{URL: e.sim.URL(), AK: "cms-ak", SK: "cms-sk", CCID: 1, VDNs: []configs.CMSVDN{{VDN: 1}}}
	tc.Intervals.Sweep = 200 * time.Millisecond
	e.cfg = configs.WithDefaults(e.cfg)
	e.start(t)
	e.events = readStream(t, e.js)
	e.waitSnapshots(t)
	if _, err := e.sim.StartCall(1002); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the call seen", func() bool { return len(e.events.calls(t, 1002)) == 2 })
	// When neither the sweep nor the gateway answers for an agent's calls,
	// it is not visible: a visibility event, and another once it is back.
	visibility := schemas.BridgeSubject(tenant, schemas.BridgeVisibility)
	e.sim.Inject(cecsim.Fault{Endpoint: "queryagentcalls", Kind: cecsim.FaultVendorCode, Code: "0100001"})
	e.sim.Inject(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultHTTPStatus, Status: 503})
	testwait.Until(t, "agents reported not visible", func() bool { return len(e.events.on(visibility)) > 0 })
	e.sim.ClearFaults()
	for _, subject := range []string{
		schemas.BridgeSubject(tenant, schemas.BridgeHeartbeat),
		// The term's first states picture, once its first sweep ran.
		schemas.BridgeSubject(tenant, schemas.BridgeStatesVisibility),
		schemas.AgentCallsV2Subject(tenant, 1002),
		schemas.AgentStateSubject(tenant, 1002),
	} {
		testwait.Until(t, "an event on "+subject, func() bool { return len(e.events.on(subject)) > 0 })
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cons, err := e.js.OrderedConsumer(ctx, schemas.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	stored := len(e.events.all()) // the bridge goes on publishing; these at least are there
	batch, err := cons.Fetch(stored, jetstream.FetchMaxWait(10*time.Second))
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
	if n < stored {
		t.Fatalf("decoded %d events, the stream held at least %d", n, stored)
	}
	for _, typ := range schemas.EventTypes {
		if types[typ] == 0 {
			t.Errorf("no %s event decoded (%v)", typ, types)
		}
	}
}
