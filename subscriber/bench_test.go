package subscriber

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// benchEnv is shared by the lookup and echo benchmarks so both run against
// the same server in one process run; it lives until the process exits.
var (
	benchOnce sync.Once
	benchSrv  *server.Server
	benchCli  *nats.Conn
	benchErr  error
)

func benchSetup(b *testing.B) {
	benchOnce.Do(func() {
		// Not b.TempDir: the server outlives the first benchmark.
		dir, err := os.MkdirTemp("", "cecbridge-bench-")
		if err != nil {
			benchErr = err
			return
		}
		benchSrv, benchErr = server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: dir, NoLog: true, NoSigs: true})
		if benchErr != nil {
			return
		}
		go benchSrv.Start()
		if !benchSrv.ReadyForConnections(10 * time.Second) {
			benchErr = fmt.Errorf("server not ready")
			return
		}
		var svcConn, echoConn *nats.Conn
		for _, c := range []**nats.Conn{&svcConn, &echoConn, &benchCli} {
			if *c, benchErr = nats.Connect(benchSrv.ClientURL()); benchErr != nil {
				return
			}
		}
		js, err := jetstream.New(svcConn)
		if err != nil {
			benchErr = err
			return
		}
		ctx := context.Background()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: DefaultEventsStream, Subjects: []string{schemas.AllEvents}, Storage: jetstream.MemoryStorage}); err != nil {
			benchErr = err
			return
		}
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: DefaultStateStream, MaxMsgsPerSubject: 1, Storage: jetstream.MemoryStorage,
			Sources: []*jetstream.StreamSource{{Name: DefaultEventsStream}}}); err != nil {
			benchErr = err
			return
		}
		br := newBridge(b, js, "dev")
		var last uint64
		for n := 1001; n < 1101; n++ {
			last = br.calls(n, []string{fmt.Sprint("call-", n), "call-x"}, time.Now())
		}
		view, err := NewView(js, ViewConfig{})
		if err != nil {
			benchErr = err
			return
		}
		go func() { _ = view.Run(ctx) }()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if benchErr = view.WaitApplied(wctx, last); benchErr != nil {
			return
		}
		if _, benchErr = NewService(ctx, svcConn, view, nil, Config{Tenants: []string{"dev"}}); benchErr != nil {
			return
		}
		// The baseline: a bare micro endpoint that echoes the request.
		echo, err := micro.AddService(echoConn, micro.Config{Name: "echo", Version: "1.0.0"})
		if err != nil {
			benchErr = err
			return
		}
		benchErr = echo.AddEndpoint("echo", micro.HandlerFunc(func(r micro.Request) { _ = r.Respond(r.Data()) }),
			micro.WithEndpointSubject("bench.echo"))
		if benchErr == nil {
			benchErr = echoConn.Flush()
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
}

// runRequesters sends b.N requests from conc goroutines and reports req/s
// and latency percentiles.
func runRequesters(b *testing.B, conc int, subject string, payload []byte) {
	var next atomic.Int64
	lat := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for g := range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				t := time.Now()
				msg, err := benchCli.Request(subject, payload, 5*time.Second)
				if err == nil && msg.Header.Get(micro.ErrorCodeHeader) != "" {
					err = fmt.Errorf("error %s", msg.Header.Get(micro.ErrorCodeHeader))
				}
				if err != nil {
					failed.Store(err)
					return
				}
				lat[g] = append(lat[g], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

var benchPayload = []byte(`{"work_no":1042}`)

func BenchmarkLookupAgentCalls(b *testing.B) {
	benchSetup(b)
	for _, conc := range []int{1, 32} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			runRequesters(b, conc, schemas.LookupSubject("dev", schemas.LookupAgentCalls), benchPayload)
		})
	}
}

func BenchmarkEchoEndpoint(b *testing.B) {
	benchSetup(b)
	for _, conc := range []int{1, 32} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			runRequesters(b, conc, "bench.echo", benchPayload)
		})
	}
}

// fakeRequest is a micro.Request answered in memory, for measuring the
// handler alone.
type fakeRequest struct {
	data []byte
	resp []byte
	code string
}

func (r *fakeRequest) Respond(b []byte, _ ...micro.RespondOpt) error { r.resp = b; return nil }
func (r *fakeRequest) RespondJSON(any, ...micro.RespondOpt) error    { panic("not used") }
func (r *fakeRequest) Error(code, _ string, _ []byte, _ ...micro.RespondOpt) error {
	r.code = code
	return nil
}
func (r *fakeRequest) Data() []byte           { return r.data }
func (r *fakeRequest) Headers() micro.Headers { return nil }
func (r *fakeRequest) Subject() string        { return "cec.lookup.dev.agent.calls" }
func (r *fakeRequest) Reply() string          { return "_INBOX.x" }

// BenchmarkHandler measures what a lookup costs on the endpoint's serial
// callback goroutine, without NATS: decode, view read, encode.
func BenchmarkHandler(b *testing.B) {
	v, err := NewView(nopJetStream{}, ViewConfig{})
	if err != nil {
		b.Fatal(err)
	}
	v.readyOnce.Do(func() { close(v.ready) })
	obs := time.Now().UTC()
	var seq uint64
	for n := 1001; n < 1101; n++ {
		seq++
		rec := schematest.CallsRecord("dev", n, 1, fmt.Sprint("call-", n), "call-x")
		v.apply(seq, rec.Subject, rec.Body)
		sip := fmt.Sprint("8888", n)
		seq++
		rec = schematest.NewEvent(schemas.TypeAgentSoftphone, schemas.AgentSoftphoneSubject("dev", n), 1, schemas.Change[schemas.AgentSoftphone]{
			Op: schemas.OpSnapshot, Key: schemas.Key{Tenant: "dev", WorkNo: n}, Seq: 1, Detected: schemas.Detected{ByPoll: obs},
			After: &schemas.AgentSoftphone{SIPAccount: sip, AccountCode: "acct", SIPServerIP: "10.0.0.1", SIPServerPort: 5060}})
		v.apply(seq, rec.Subject, rec.Body)
		seq++
		rec = schematest.NewEvent(schemas.TypePhoneState, schemas.PhoneStateSubject("dev", sip), 1, schemas.Change[schemas.PhoneState]{
			Op: schemas.OpSnapshot, Key: schemas.Key{Tenant: "dev", PhoneNum: sip}, Seq: 1, Detected: schemas.Detected{ByPoll: obs},
			After: &schemas.PhoneState{Status: schemas.PhoneRegistered, ConfigID: 7}})
		v.apply(seq, rec.Subject, rec.Body)
		seq++
		signedIn := obs.Add(-time.Hour)
		rec = schematest.NewEvent(schemas.TypeAgentState, schemas.AgentStateSubject("dev", n), 1, schemas.Change[schemas.AgentState]{
			Op: schemas.OpSnapshot, Key: schemas.Key{Tenant: "dev", WorkNo: n}, Seq: 1, Detected: schemas.Detected{ByPoll: obs, Source: schemas.SourceCMS},
			After: &schemas.AgentState{State: "talking", StateCode: 5, Since: obs.Add(-time.Minute).Truncate(time.Second), PrevState: "answering", SignedInAt: &signedIn}})
		v.apply(seq, rec.Subject, rec.Body)
	}
	s := &Service{cfg: Config{Tenants: []string{"dev"}}, view: v, ctx: context.Background()}
	s.cfg.setDefaults()
	s.log = s.cfg.Logger
	for _, ep := range endpoints {
		var body []byte
		switch ep.subject {
		case schemas.LookupAgentCalls, schemas.LookupAgentSoftphone, schemas.LookupAgentState:
			body = []byte(`{"work_no":1042}`)
		case schemas.LookupPhoneState:
			body = []byte(`{"phone_num":"88881042"}`)
		default:
			continue
		}
		h := s.handler("dev", ep)
		b.Run(ep.subject, func(b *testing.B) {
			b.ReportAllocs()
			req := &fakeRequest{data: body}
			for b.Loop() {
				req.resp, req.code = nil, ""
				h(req)
			}
			if req.code != "" || len(req.resp) == 0 {
				b.Fatalf("answered code %q: %s", req.code, req.resp)
			}
		})
	}
}

// nopJetStream satisfies NewView; the handler benchmark never reads a
// stream.
type nopJetStream struct{ jetstream.JetStream }
