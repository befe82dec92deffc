package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// Secret redaction: no vendor secret reaches a log, an event, a lookup
// answer, the metrics or an error.

// wireSecrets wraps a vendor handler and collects every secret that crosses
// the wire: issued tokens, GUIDs, SIP and phone passwords, and the
// credentials the bridge sends.
type wireSecrets struct {
	next http.Handler
	mu   sync.Mutex
	set  map[string]string // value -> kind
}

var (
	reToken   = regexp.MustCompile(`"AccessToken"\s*:\s*"([^"]+)"`)
	reSIPPwd  = regexp.MustCompile(`"sipPwd"\s*:\s*"([^"]+)"`)
	rePassPwd = regexp.MustCompile(`"password"\s*:\s*"([^"]+)"`)
	reGUID    = regexp.MustCompile(`"guid"\s*:\s*"([^"]+)"`)
)

func (ws *wireSecrets) add(kind, v string) {
	v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "JSESSIONID="))
	if v == "" {
		return
	}
	ws.mu.Lock()
	ws.set[v] = kind
	ws.mu.Unlock()
}

func (ws *wireSecrets) addBody(body []byte) {
	for kind, re := range map[string]*regexp.Regexp{"token": reToken, "sipPwd": reSIPPwd, "password": rePassPwd, "guid": reGUID} {
		for _, m := range re.FindAllSubmatch(body, -1) {
			ws.add(kind, string(m[1]))
		}
	}
}

func (ws *wireSecrets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqBody, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	ws.addBody(reqBody)
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		ws.add("token", tok)
	}
	ws.add("guid", r.Header.Get("guid"))
	cw := &captureWriter{ResponseWriter: w}
	ws.next.ServeHTTP(cw, r)
	ws.add("guid", w.Header().Get("Set-GUID"))
	ws.addBody(cw.body.Bytes())
}

func (ws *wireSecrets) byKind() map[string][]string {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	out := map[string][]string{}
	for v, k := range ws.set {
		out[k] = append(out[k], v)
	}
	return out
}

type captureWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (c *captureWriter) Write(p []byte) (int, error) {
	c.body.Write(p)
	return c.ResponseWriter.Write(p)
}

func (c *captureWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// streamDump returns every message body (and header values) of a stream.
func streamDump(t *testing.T, js jetstream.JetStream, stream string) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for left := info.NumPending; left > 0; {
		batch, err := cons.Fetch(int(min(left, 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var hdr []string
			for k, vs := range m.Headers() {
				hdr = append(hdr, k+": "+strings.Join(vs, ","))
			}
			out = append(out, append([]byte(m.Subject()+"\n"+strings.Join(hdr, "\n")+"\n"), m.Data()...))
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("%s: fetch returned nothing with %d pending", stream, left)
		}
		left -= uint64(n)
	}
	return out
}

// rawLookup sends a lookup and returns the whole reply (headers and body)
// as text; it fails the test on a service error unless allowErr.
func rawLookup(t *testing.T, nc *nats.Conn, subject string, req any, allowErr bool) string {
	t.Helper()
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := nc.Request(subject, data, 5*time.Second)
	if err != nil {
		t.Fatalf("lookup %s: %v", subject, err)
	}
	if code := msg.Header.Get("Nats-Service-Error-Code"); code != "" && !allowErr {
		t.Fatalf("lookup %s: error %s %s", subject, code, msg.Header.Get("Nats-Service-Error"))
	}
	return fmt.Sprintf("%v\n%s", msg.Header, msg.Data)
}

// None of the vendor's secrets (app secret, agent password, every issued
// token and GUID, SIP and phone passwords) shows up in the debug log, the
// streams, lookup answers, the metrics or the readiness page, through a
// scenario of faults that put vendor bodies into errors.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		appSecret = "AppSecret-q7Zr!x91-UNIQUE"
		agentPass = "AgentPass-k4Wm!z27-UNIQUE"
		ten       = "sec"
	)
	sim := opsSim(t, cecsim.Config{
		Agents: 6, AppKey: "ops-app-key", AppSecret: appSecret, AgentPassword: agentPass,
		GUIDInterval: 300 * time.Millisecond, GUIDTimeout: 2 * time.Second,
	})
	t.Cleanup(func() { _ = sim.Close() })
	wire := &wireSecrets{next: sim.Handler(), set: map[string]string{}}
	vendor := httptest.NewServer(wire)
	t.Cleanup(vendor.Close)

	srv := natstest.RunServer(t)
	var logs testbuf.Buffer
	cfg := configs.WithDefaults(configs.Bridge{
		NATS:    configs.NATS{URLs: []string{srv.URL()}, ReconnectWait: 50 * time.Millisecond},
		HTTP:    configs.HTTP{Listen: "127.0.0.1:0"},
		Tenants: []configs.Tenant{tenantCfg(ten, vendor.URL, "ops-app-key", appSecret, agentPass)},
	})
	nc := srv.Connect(t)
	js := natstest.JetStream(t, nc)
	rb := runBridge(t, cfg, srv.Connect(t), debugLogger(&logs))
	base := rb.httpBase(t)

	eventCount := func() uint64 {
		st, err := js.Stream(t.Context(), schemas.EventsStream)
		if err != nil {
			return 0
		}
		return st.CachedInfo().State.Msgs
	}
	testwait.For(t, 15*time.Second, "snapshots", func() bool { return eventCount() >= 12 })
	callID, err := sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent := func(what string, cond func(string) bool) {
		t.Helper()
		testwait.For(t, 15*time.Second, what, func() bool {
			for _, b := range streamDump(t, js, schemas.EventsStream) {
				if cond(string(b)) {
					return true
				}
			}
			return false
		})
	}
	waitEvent("the call event", func(b string) bool { return strings.Contains(b, callID) })

	// fire injects a fault that fires count times, runs trigger, and waits
	// until the simulator has served the fault.
	fire := func(f cecsim.Fault, trigger func()) {
		t.Helper()
		before := sim.Counters()[f.Endpoint]
		sim.Inject(f)
		if trigger != nil {
			trigger()
		}
		testwait.For(t, 15*time.Second, fmt.Sprintf("%s on %s to fire", f.Kind, f.Endpoint), func() bool {
			return sim.Counters()[f.Endpoint] >= before+int64(f.Count)
		})
	}
	fire(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultHTTPStatus, Status: 503, Count: 3}, nil)
	fire(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultGarbled, Count: 3}, nil)
	fire(cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultGarbled, Count: 2}, nil)
	fire(cecsim.Fault{Endpoint: "queryPhone", Kind: cecsim.FaultGarbled, Count: 2}, nil)
	fire(cecsim.Fault{Endpoint: "queryPhone", Kind: cecsim.FaultHTTPStatus, Status: 500, Count: 1}, nil)
	// A revoked token, and the replacement arriving garbled (its body holds
	// the new token's text) and then as a 5xx.
	fire(cecsim.Fault{Endpoint: "token", Kind: cecsim.FaultGarbled, Count: 1}, sim.RevokeTokens)
	fire(cecsim.Fault{Endpoint: "token", Kind: cecsim.FaultHTTPStatus, Status: 502, Count: 1}, sim.RevokeTokens)
	// A kick-out whose sign-in answer comes back garbled, then a GUID
	// invalidation.
	fire(cecsim.Fault{Endpoint: "login", Kind: cecsim.FaultGarbled, Count: 1}, func() { sim.KickOut(1001) })
	sim.InvalidateGUID(1001)
	fire(cecsim.Fault{Endpoint: "agentevent", Kind: cecsim.FaultVendorCode, Code: "100-006", Count: 1}, nil)
	sim.ClearFaults()

	// The bridge recovers: a change after the faults arrives.
	if err := sim.SetSoftphone(1003, "77770003", "acct-after-faults"); err != nil {
		t.Fatal(err)
	}
	waitEvent("the change after the faults", func(b string) bool { return strings.Contains(b, "77770003") })
	testwait.For(t, 15*time.Second, "ready again", func() bool {
		code, _ := httpGet(t, base+"/readyz")
		return code == http.StatusOK
	})

	// Lookups of every kind.
	var answers []string
	lk := func(ep string, req any, allowErr bool) {
		answers = append(answers, rawLookup(t, nc, schemas.LookupPrefix+"."+ten+"."+ep, req, allowErr))
	}
	info, _ := sim.Agent(1004)
	lk(schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1002}, false)
	lk(schemas.LookupAgentCalls, schemas.AgentCallsRequest{WorkNo: 1002, MaxAge: "1ms"}, false)
	lk(schemas.LookupAgentSoftphone, schemas.AgentSoftphoneRequest{WorkNo: 1003}, false)
	lk(schemas.LookupAgentByAccount, schemas.AgentByAccountRequest{Account: info.AccountCode}, info.AccountCode == "")
	lk(schemas.LookupAgentByAccount, schemas.AgentByAccountRequest{Account: "no-such-account"}, true)
	lk(schemas.LookupPhoneState, schemas.PhoneStateRequest{PhoneNum: sim.Phones()[0].PhoneNum}, false)
	lk(schemas.LookupAgentsList, schemas.AgentsListRequest{}, false)
	lk(schemas.LookupPhonesList, schemas.PhonesListRequest{}, false)
	if !strings.Contains(answers[0], callID) {
		t.Fatalf("agent.calls answer lacks the call: %s", answers[0])
	}

	_, metricsPage := httpGet(t, base+"/metrics")
	_, readyPage := httpGet(t, base+"/readyz")
	rb.stop() // sign-out and shutdown logging are scanned too

	// What was captured must be substantial, or the scan proves nothing.
	got := wire.byKind()
	want := map[string]int{"token": 3, "guid": 3, "sipPwd": 6, "password": 2}
	for kind, n := range want {
		if len(got[kind]) < n {
			t.Fatalf("captured %d %s value(s) on the wire, want at least %d", len(got[kind]), kind, n)
		}
	}
	if !slices.Contains(got["password"], agentPass) {
		t.Fatal("the agent password was not seen on the wire")
	}
	secrets := map[string]string{appSecret: "app secret", agentPass: "agent password"}
	for kind, vs := range got {
		for _, v := range vs {
			if len(v) < 6 {
				t.Fatalf("captured %s %q too short to scan for", kind, v)
			}
			secrets[v] = kind
		}
	}
	places := map[string]string{"log": logs.String(), "metrics": string(metricsPage), "readyz": string(readyPage)}
	for i, a := range answers {
		places[fmt.Sprintf("lookup answer %d", i)] = a
	}
	for _, stream := range []string{schemas.EventsStream, schemas.StateStream} {
		msgs := streamDump(t, js, stream)
		if len(msgs) == 0 {
			t.Fatalf("%s is empty", stream)
		}
		for i, m := range msgs {
			places[fmt.Sprintf("%s message %d", stream, i)] = string(m)
		}
	}
	if !strings.Contains(places["log"], `"level":"DEBUG"`) || !strings.Contains(places["log"], "cec request failed") {
		t.Fatal("the debug log does not show the failed vendor requests; the scan would prove little")
	}
	leaks := 0
	for where, text := range places {
		for v, kind := range secrets {
			if i := strings.Index(text, v); i >= 0 {
				leaks++
				if leaks <= 10 {
					lo, hi := max(0, i-120), min(len(text), i+len(v)+40)
					t.Errorf("%s (%s) found in %s: …%s…", kind, v, where, text[lo:hi])
				}
			}
		}
	}
	if leaks > 0 {
		t.Fatalf("%d leak(s) of %d secrets across %d places", leaks, len(secrets), len(places))
	}
	t.Logf("scanned %d places for %d secrets (%d tokens, %d GUIDs, %d SIP and %d phone/agent passwords)",
		len(places), len(secrets), len(got["token"]), len(got["guid"]), len(got["sipPwd"]), len(got["password"]))
}
