package app_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/schemas"
)

// ---------------------------------------------------------------------------
// Helpers

// opsEventually waits for cond (see testwait.For).
func opsEventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, d, what, cond)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func debugLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// opsSim starts a simulator with fast timers and no workload.
func opsSim(t *testing.T, cfg cecsim.Config) *cecsim.Sim {
	t.Helper()
	if cfg.LongPollHold == 0 {
		cfg.LongPollHold = 100 * time.Millisecond
	}
	if cfg.NoPollTimeout == 0 {
		cfg.NoPollTimeout = 10 * time.Second
	}
	sim, err := cecsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

func startSim(t *testing.T, sim *cecsim.Sim) {
	t.Helper()
	if err := sim.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
}

// tenantCfg is a tenant with fast intervals against base.
func tenantCfg(name, base, appKey, appSecret, agentPass string) configs.Tenant {
	return configs.Tenant{
		Name: name, FabricURL: base, GatewayURL: base,
		AppKey: appKey, AppSecret: configs.Secret(appSecret),
		Timeout:  2 * time.Second,
		Monitors: []configs.Monitor{{AgentID: 1001, Password: configs.Secret(agentPass)}},
		Intervals: configs.Intervals{
			Calls: 50 * time.Millisecond, Idle: 200 * time.Millisecond,
			Roster: 100 * time.Millisecond, Phones: 100 * time.Millisecond, Heartbeat: 300 * time.Millisecond,
		},
	}
}

// runningBridge is a bridge built with app.New and run with Bridge.Serve.
type runningBridge struct {
	b    *app.Bridge
	stop func()
}

func runBridge(t *testing.T, cfg configs.Bridge, nc *nats.Conn, log *slog.Logger) *runningBridge {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b, err := app.New(cfg, nc, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("bridge: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("bridge did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return &runningBridge{b: b, stop: stop}
}

// httpAddr waits for the bridge's metrics listener.
func (r *runningBridge) httpBase(t *testing.T) string {
	t.Helper()
	opsEventually(t, 10*time.Second, "the HTTP listener", func() bool { return r.b.HTTPAddr() != "" })
	return "http://" + r.b.HTTPAddr()
}

func httpGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, body
}

// ---------------------------------------------------------------------------
// Certificates

type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// serverCert issues a certificate for 127.0.0.1 and localhost.
func (ca *testCA) serverCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeCA writes the CA certificate to a PEM file and returns its path.
func (ca *testCA) writeCA(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, ca.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ---------------------------------------------------------------------------
// NATS connection options

// natsServer starts an embedded JetStream server with extra options.
func natsServer(t *testing.T, f func(*server.Options)) *natstest.Server {
	t.Helper()
	return natstest.RunServer(t, natstest.WithOptions(f))
}

func natsCfg(url string) configs.NATS {
	c := configs.WithDefaults(configs.Bridge{}).NATS
	c.URLs = []string{url}
	c.ReconnectWait = 50 * time.Millisecond
	c.ConnectTimeout = 2 * time.Second
	return c
}

// connectAndPublish connects with the bridge's own options, and stores one
// message in a JetStream stream.
func connectAndPublish(t *testing.T, c configs.NATS) {
	t.Helper()
	var logs syncBuffer
	nc, err := app.ConnectNATS(c, debugLogger(&logs))
	if err != nil {
		t.Fatalf("ConnectNATS: %v", err)
	}
	defer nc.Close()
	opsEventually(t, 10*time.Second, "the connection", nc.IsConnected)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OPS", Subjects: []string{"ops.>"}}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "ops.hello", []byte("hi"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ack.Stream != "OPS" || ack.Sequence != 1 {
		t.Fatalf("ack %+v", ack)
	}
}

// connectFails connects with the bridge's options and expects the failure
// to be reported, in the returned error or in the log, matching want.
func connectFails(t *testing.T, c configs.NATS, want *regexp.Regexp, secrets ...string) {
	t.Helper()
	var logs syncBuffer
	nc, err := app.ConnectNATS(c, debugLogger(&logs))
	if err != nil {
		if !want.MatchString(err.Error()) {
			t.Fatalf("ConnectNATS error %q does not match %s", err, want)
		}
		return
	}
	defer nc.Close()
	opsEventually(t, 10*time.Second, "the failure to be reported ("+want.String()+")", func() bool {
		return want.MatchString(logs.String())
	})
	if nc.IsConnected() {
		t.Fatal("connected although it should not")
	}
	for _, sec := range secrets {
		if strings.Contains(logs.String(), sec) {
			t.Fatalf("the log holds the secret %q", sec)
		}
	}
}

func TestNATSAuthAndTLSOptions(t *testing.T) {
	t.Run("tls", func(t *testing.T) {
		ca := newTestCA(t, "ops test CA")
		cert := ca.serverCert(t)
		srv := natsServer(t, func(o *server.Options) {
			o.TLS = true
			o.TLSTimeout = 2
			o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		})
		c := natsCfg(srv.URL())
		c.TLS.CAFile = ca.writeCA(t)
		connectAndPublish(t, c)

		// Without the CA the server's certificate cannot be verified.
		connectFails(t, natsCfg(srv.URL()), regexp.MustCompile(`x509: certificate signed by unknown authority|tls: failed to verify certificate`))
		// A CA that did not sign the server's certificate fails the same way.
		other := natsCfg(srv.URL())
		other.TLS.CAFile = newTestCA(t, "another CA").writeCA(t)
		connectFails(t, other, regexp.MustCompile(`x509: certificate signed by unknown authority|tls: failed to verify certificate`))
	})
	t.Run("user_password", func(t *testing.T) {
		srv := natsServer(t, func(o *server.Options) { o.Username, o.Password = "bridge", "n4ts-pa55-ops" })
		c := natsCfg(srv.URL())
		c.User, c.Password = "bridge", "n4ts-pa55-ops"
		connectAndPublish(t, c)
		c.Password = "wrong-password-77"
		connectFails(t, c, regexp.MustCompile(`(?i)authorization violation`), "wrong-password-77")
	})
	t.Run("token", func(t *testing.T) {
		srv := natsServer(t, func(o *server.Options) { o.Authorization = "s3cret-nats-token" })
		c := natsCfg(srv.URL())
		c.Token = "s3cret-nats-token"
		connectAndPublish(t, c)
		c.Token = "not-the-token-77"
		connectFails(t, c, regexp.MustCompile(`(?i)authorization violation`), "not-the-token-77")
	})
}

// The vendor side: the cec client trusts an HTTPS simulator through a
// configured CA file, and refuses it with a TLS error without one.
func TestVendorTLSWithCustomCA(t *testing.T) {
	ca := newTestCA(t, "vendor CA")
	sim := opsSim(t, cecsim.Config{Agents: 3})
	ts := httptest.NewUnstartedServer(sim.Handler())
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t)}, MinVersion: tls.VersionTLS12}
	var serverLog syncBuffer
	ts.Config.ErrorLog = stdlog.New(&serverLog, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = sim.Close() })
	if !strings.HasPrefix(ts.URL, "https://127.0.0.1:") {
		t.Fatalf("server URL %s", ts.URL)
	}

	newClient := func(caFile string) *cec.Client {
		c, err := cec.New(cec.Config{
			FabricURL: ts.URL, GatewayURL: ts.URL, AppKey: "app-key", AppSecret: "app-secret",
			CAFile: caFile, RequestTimeout: 3 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	c := newClient(ca.writeCA(t))
	info, err := c.QueryAgentInfo(ctx)
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	if len(info.Agents) != 3 {
		t.Fatalf("with the CA: %d agents, want 3", len(info.Agents))
	}
	if c.TokenExpiry().IsZero() {
		t.Fatal("no token after a successful query")
	}
	s := c.NewSession(cec.SessionConfig{AgentID: 1001, Password: "agent-pass"})
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("gateway session over TLS: %v", err)
	}
	if _, err := s.AllCallInfo(ctx, 1002); err != nil {
		t.Fatalf("allcallinfoEx over TLS: %v", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	before := sim.Counters()["token"]
	var clientLog syncBuffer
	noCA, err := cec.New(cec.Config{
		FabricURL: ts.URL, GatewayURL: ts.URL, AppKey: "app-key", AppSecret: "app-secret",
		RequestTimeout: time.Second, Logger: debugLogger(&clientLog),
	})
	if err != nil {
		t.Fatal(err)
	}
	qctx, qcancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer qcancel()
	if _, err = noCA.QueryAgentInfo(qctx); err == nil {
		t.Fatal("without the CA the query succeeded")
	}
	if got := sim.Counters()["token"]; got != before {
		t.Fatalf("without the CA %d token request(s) reached the simulator", got-before)
	}
	// The handshake is what failed: the server saw the client refuse its
	// certificate.
	opsEventually(t, 5*time.Second, "the server to see a refused handshake", func() bool {
		return strings.Contains(serverLog.String(), "tls: bad certificate")
	})
	t.Logf("client error without the CA: %v; client log: %s", err, clientLog.String())
	// The same configuration through a plain client names the TLS cause.
	_, err = http.Get(ts.URL + "/cecsim/counters") //nolint:noctx // test
	var ue x509.UnknownAuthorityError
	if !errors.As(err, &ue) {
		t.Fatalf("plain client without the CA: %v, want x509.UnknownAuthorityError", err)
	}
}

// ---------------------------------------------------------------------------
// Secret redaction

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
	var logs syncBuffer
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
	opsEventually(t, 15*time.Second, "snapshots", func() bool { return eventCount() >= 12 })
	callID, err := sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent := func(what string, cond func(string) bool) {
		t.Helper()
		opsEventually(t, 15*time.Second, what, func() bool {
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
		opsEventually(t, 15*time.Second, fmt.Sprintf("%s on %s to fire", f.Kind, f.Endpoint), func() bool {
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
	opsEventually(t, 15*time.Second, "ready again", func() bool {
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

// ---------------------------------------------------------------------------
// Health, readiness and metrics

// opsEnv is one NATS server, one started simulator and a bridge config with
// the HTTP listener on a free port.
type opsEnv struct {
	srv *natstest.Server
	sim *cecsim.Sim
	cfg configs.Bridge
}

func newOpsEnv(t *testing.T, agents int) *opsEnv {
	t.Helper()
	srv := natstest.RunServer(t)
	sim := opsSim(t, cecsim.Config{Agents: agents, GUIDInterval: 500 * time.Millisecond, GUIDTimeout: 2 * time.Second})
	startSim(t, sim)
	cfg := configs.WithDefaults(configs.Bridge{
		NATS:    configs.NATS{URLs: []string{srv.URL()}, ReconnectWait: 50 * time.Millisecond},
		HTTP:    configs.HTTP{Listen: "127.0.0.1:0"},
		Tenants: []configs.Tenant{tenantCfg("ops", sim.URL(), "app-key", "app-secret", "agent-pass")},
	})
	return &opsEnv{srv: srv, sim: sim, cfg: cfg}
}

type readyz struct {
	Status   string            `json:"status"`
	NotReady map[string]string `json:"not_ready"`
}

func getReadyz(t *testing.T, base string) (int, readyz) {
	t.Helper()
	code, body := httpGet(t, base+"/readyz")
	var r readyz
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("/readyz answered %d with %q: %v", code, body, err)
	}
	return code, r
}

func waitReadyz(t *testing.T, base string, what string, cond func(int, readyz) bool) readyz {
	t.Helper()
	var last readyz
	var lastCode int
	deadline := time.Now().Add(20 * time.Second)
	for {
		lastCode, last = getReadyz(t, base)
		if cond(lastCode, last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for /readyz: %s; last %d %+v", what, lastCode, last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// /healthz answers while the process lives; /readyz flips with the NATS
// connection and with the tenant's gateway session, naming what is wrong.
func TestReadinessFlips(t *testing.T) {
	e := newOpsEnv(t, 4)
	e.cfg.Lookup.Disabled = true
	rb := runBridge(t, e.cfg, e.srv.Connect(t), slog.New(slog.DiscardHandler))
	base := rb.httpBase(t)

	healthy := func() {
		t.Helper()
		code, body := httpGet(t, base+"/healthz")
		if code != http.StatusOK || !strings.Contains(string(body), `"alive"`) {
			t.Fatalf("/healthz answered %d %s", code, body)
		}
	}
	healthy()
	r := waitReadyz(t, base, "ready", func(code int, _ readyz) bool { return code == http.StatusOK })
	if r.Status != "ready" || len(r.NotReady) != 0 {
		t.Fatalf("ready answer %+v", r)
	}

	// NATS down: not ready, naming nats; alive all the same.
	e.srv.Shutdown()
	r = waitReadyz(t, base, "503 naming nats", func(code int, r readyz) bool {
		return code == http.StatusServiceUnavailable && r.NotReady["nats"] != ""
	})
	if r.Status != "not ready" {
		t.Fatalf("not-ready answer %+v", r)
	}
	for k := range r.NotReady {
		if k != "nats" {
			t.Errorf("with only NATS down /readyz also names %q: %+v", k, r.NotReady)
		}
	}
	healthy()
	e.srv.Start()
	waitReadyz(t, base, "ready after NATS is back", func(code int, _ readyz) bool { return code == http.StatusOK })

	// The monitoring session is kicked out and cannot sign in again.
	e.sim.Inject(cecsim.Fault{Endpoint: "login", Kind: cecsim.FaultHTTPStatus, Status: 503})
	e.sim.Inject(cecsim.Fault{Endpoint: "forcelogin", Kind: cecsim.FaultHTTPStatus, Status: 503})
	e.sim.KickOut(1001)
	r = waitReadyz(t, base, "503 naming the session", func(code int, r readyz) bool {
		return code == http.StatusServiceUnavailable && r.NotReady["tenant.ops.session"] != ""
	})
	if _, ok := r.NotReady["nats"]; ok {
		t.Fatalf("NATS reported down with only the session lost: %+v", r)
	}
	healthy()
	e.sim.ClearFaults()
	waitReadyz(t, base, "ready after the session signs in again", func(code int, _ readyz) bool { return code == http.StatusOK })
}

func scrapeMetrics(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics answered %d", code)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// sample finds the value of the sample of fam whose labels include want.
func sample(fams map[string]*dto.MetricFamily, fam string, want map[string]string) (float64, bool) {
	f, ok := fams[fam]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		ls := labelsOf(m)
		for k, v := range want {
			if ls[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// After a short scenario the metrics page has every documented family, with
// only bounded labels, and counts lookups by endpoint and code.
func TestMetricsFamiliesAndLabels(t *testing.T) {
	e := newOpsEnv(t, 5)
	e.cfg.Tenants[0].Budget = 500 // Burst left 0: the bridge must still poll
	var logs syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	rb := runBridge(t, e.cfg, e.srv.Connect(t), debugLogger(&logs))
	base := rb.httpBase(t)
	nc := e.srv.Connect(t)
	waitReadyz(t, base, "ready", func(code int, _ readyz) bool { return code == http.StatusOK })

	callID, err := e.sim.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	subj := func(ep string) string { return schemas.LookupPrefix + ".ops." + ep }
	opsEventually(t, 15*time.Second, "the call in the lookup view", func() bool {
		return strings.Contains(rawLookup(t, nc, subj(schemas.LookupAgentCalls), schemas.AgentCallsRequest{WorkNo: 1002}, true), callID)
	})
	e.sim.Inject(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultHTTPStatus, Status: 502, Count: 2})
	opsEventually(t, 15*time.Second, "an upstream error to be counted", func() bool {
		v, ok := sample(scrapeMetrics(t, base), "cecbridge_upstream_requests_total", map[string]string{"endpoint": "allcallinfoEx", "outcome": "upstream"})
		return ok && v >= 1
	})

	// Lookups: answered, not found, bad request.
	before, _ := sample(scrapeMetrics(t, base), "cecbridge_lookups_total", map[string]string{"endpoint": "phone.state", "code": "404"})
	rawLookup(t, nc, subj(schemas.LookupAgentsList), schemas.AgentsListRequest{}, false)
	rawLookup(t, nc, subj(schemas.LookupAgentSoftphone), schemas.AgentSoftphoneRequest{WorkNo: 1003}, false)
	for range 3 {
		if a := rawLookup(t, nc, subj(schemas.LookupPhoneState), schemas.PhoneStateRequest{PhoneNum: "55500000"}, true); !strings.Contains(a, "404") {
			t.Fatalf("unknown phone answered %s", a)
		}
	}
	if msg, err := nc.Request(subj(schemas.LookupAgentCalls), []byte(`{"work_no":`), 5*time.Second); err != nil || msg.Header.Get("Nats-Service-Error-Code") != "400" {
		t.Fatalf("malformed request: %v %v", err, msg)
	}

	fams := scrapeMetrics(t, base)
	if v, _ := sample(fams, "cecbridge_lookups_total", map[string]string{"tenant": "ops", "endpoint": "phone.state", "code": "404"}); v-before != 3 {
		t.Errorf("phone.state 404 counted %v times, want 3", v-before)
	}
	for ep, code := range map[string]string{"agents.list": "ok", "agent.softphone": "ok", "agent.calls": "400"} {
		if v, ok := sample(fams, "cecbridge_lookups_total", map[string]string{"tenant": "ops", "endpoint": ep, "code": code}); !ok || v < 1 {
			t.Errorf("cecbridge_lookups_total{endpoint=%q,code=%q} = %v, %v", ep, code, v, ok)
		}
	}
	if v, ok := sample(fams, "cecbridge_lookups_total", map[string]string{"endpoint": "agent.calls", "code": "ok"}); !ok || v < 1 {
		t.Errorf("agent.calls ok = %v, %v", v, ok)
	}

	// Every documented family, with exactly its documented label names.
	want := map[string][]string{
		"cecbridge_upstream_requests_total":             {"endpoint", "outcome", "tenant"},
		"cecbridge_upstream_request_duration_seconds":   {"endpoint", "tenant"},
		"cecbridge_polls_total":                         {"kind", "outcome", "tenant"},
		"cecbridge_events_total":                        {"tenant", "type"},
		"cecbridge_publish_attempts_total":              {"outcome"},
		"cecbridge_publish_duration_seconds":            nil,
		"cecbridge_publish_buffered_events":             nil,
		"cecbridge_agents":                              {"tenant", "visibility"},
		"cecbridge_gateway_sessions":                    {"state", "tenant"},
		"cecbridge_token_expiry_seconds":                {"tenant"},
		"cecbridge_upstream_budget_requests_per_second": {"tenant"},
		"cecbridge_nats_connected":                      nil,
		"cecbridge_lookups_total":                       {"code", "endpoint", "tenant"},
		"cecbridge_lookup_duration_seconds":             {"endpoint", "tenant"},
	}
	for name, labels := range want {
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) == 0 {
			t.Errorf("family %s missing", name)
			continue
		}
		for _, m := range f.GetMetric() {
			var names []string
			for n := range labelsOf(m) {
				if name == "cecbridge_publish_duration_seconds" || !strings.HasSuffix(name, "_seconds") || n != "le" {
					names = append(names, n)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, labels) {
				t.Errorf("%s has labels %v, want %v", name, names, labels)
			}
		}
	}
	checks := []struct {
		fam    string
		labels map[string]string
		ok     func(float64) bool
	}{
		{"cecbridge_nats_connected", nil, func(v float64) bool { return v == 1 }},
		{"cecbridge_agents", map[string]string{"tenant": "ops", "visibility": "visible"}, func(v float64) bool { return v >= 1 }},
		{"cecbridge_gateway_sessions", map[string]string{"tenant": "ops", "state": "ready"}, func(v float64) bool { return v == 1 }},
		{"cecbridge_token_expiry_seconds", map[string]string{"tenant": "ops"}, func(v float64) bool { return v > 60 }},
		{"cecbridge_upstream_budget_requests_per_second", map[string]string{"tenant": "ops"}, func(v float64) bool { return v == 500 }},
		{"cecbridge_publish_attempts_total", map[string]string{"outcome": "ok"}, func(v float64) bool { return v > 0 }},
		{"cecbridge_events_total", map[string]string{"tenant": "ops", "type": schemas.TypeAgentCalls}, func(v float64) bool { return v >= 2 }},
		{"cecbridge_polls_total", map[string]string{"tenant": "ops", "kind": "calls", "outcome": "ok"}, func(v float64) bool { return v > 0 }},
		{"cecbridge_publish_buffered_events", nil, func(v float64) bool { return v >= 0 }},
	}
	vis, _ := sample(fams, "cecbridge_agents", map[string]string{"tenant": "ops", "visibility": "visible"})
	notVis, _ := sample(fams, "cecbridge_agents", map[string]string{"tenant": "ops", "visibility": "not_visible"})
	if tracked := vis + notVis; tracked < 4 || tracked > 5 {
		t.Errorf("cecbridge_agents: %v visible + %v not visible, want the simulator's roster", vis, notVis)
	}
	for _, c := range checks {
		if v, ok := sample(fams, c.fam, c.labels); !ok || !c.ok(v) {
			t.Errorf("%s%v = %v (present %v)", c.fam, c.labels, v, ok)
		}
	}

	// Bounded label values: no work number, call ID, phone number or
	// account anywhere in a cecbridge_ label.
	var unbounded []string
	for _, w := range e.sim.Agents() {
		unbounded = append(unbounded, fmt.Sprint(w))
		if a, ok := e.sim.Agent(w); ok && a.SIPAccount != "" {
			unbounded = append(unbounded, a.SIPAccount)
		}
	}
	for _, p := range e.sim.Phones() {
		unbounded = append(unbounded, p.PhoneNum)
	}
	unbounded = append(unbounded, callID, "55500000")
	for name, f := range fams {
		if !strings.HasPrefix(name, "cecbridge_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for k, v := range labelsOf(m) {
				for _, u := range unbounded {
					if strings.Contains(v, u) {
						t.Errorf("%s label %s=%q holds an entity id (%s)", name, k, v, u)
					}
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Multiple tenants

// One bridge serves two tenants on two simulators with different
// credentials and intervals; each tenant's changes land under its own
// subjects and nowhere else.
func TestTwoTenantsOneBridge(t *testing.T) {
	srv := natstest.RunServer(t)
	north := opsSim(t, cecsim.Config{Agents: 3, AppKey: "north-key", AppSecret: "north-secret", AgentPassword: "north-pass"})
	south := opsSim(t, cecsim.Config{Agents: 4, FirstWorkNo: 2001, AppKey: "south-key", AppSecret: "south-secret", AgentPassword: "south-pass"})
	startSim(t, north)
	startSim(t, south)
	tn := tenantCfg("north", north.URL(), "north-key", "north-secret", "north-pass")
	ts := tenantCfg("south", south.URL(), "south-key", "south-secret", "south-pass")
	ts.Monitors[0].AgentID = 2001
	ts.Intervals = configs.Intervals{Calls: 80 * time.Millisecond, Idle: 300 * time.Millisecond,
		Roster: 150 * time.Millisecond, Phones: 250 * time.Millisecond, Heartbeat: 400 * time.Millisecond}
	cfg := configs.WithDefaults(configs.Bridge{
		NATS:    configs.NATS{URLs: []string{srv.URL()}, ReconnectWait: 50 * time.Millisecond},
		Tenants: []configs.Tenant{tn, ts},
	})
	nc := srv.Connect(t)
	js := natstest.JetStream(t, nc)
	runBridge(t, cfg, srv.Connect(t), slog.New(slog.DiscardHandler))

	// Both tenants' snapshots arrive, each under its own prefix.
	lastOn := func(subject string) (schemas.Event, bool) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, schemas.EventsStream)
		if err != nil {
			return schemas.Event{}, false
		}
		m, err := st.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			return schemas.Event{}, false
		}
		var ev schemas.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		return ev, true
	}
	for tenant, sim := range map[string]*cecsim.Sim{"north": north, "south": south} {
		opsEventually(t, 15*time.Second, tenant+" snapshots", func() bool {
			for _, w := range sim.Agents() {
				if _, ok := lastOn(schemas.AgentCallsSubject(tenant, w)); !ok {
					return false
				}
			}
			return true
		})
	}
	idN, err := north.StartCall(1002)
	if err != nil {
		t.Fatal(err)
	}
	idS, err := south.StartCall(2003)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tenant string
		workNo int
		id     string
	}{{"north", 1002, idN}, {"south", 2003, idS}} {
		opsEventually(t, 15*time.Second, c.tenant+" call event", func() bool {
			ev, ok := lastOn(schemas.AgentCallsSubject(c.tenant, c.workNo))
			return ok && strings.Contains(string(ev.Data), c.id)
		})
	}

	// Nothing crossed over: per-tenant subjects hold only their own agents.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, schemas.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("cec.evt.>"))
	if err != nil {
		t.Fatal(err)
	}
	perTenant := map[string]int{}
	for subject := range info.State.Subjects {
		ps, err := schemas.ParseSubject(subject)
		if err != nil {
			t.Fatalf("subject %s: %v", subject, err)
		}
		perTenant[ps.Tenant]++
		if ps.WorkNo != 0 {
			inNorth := ps.WorkNo >= 1001 && ps.WorkNo <= 1003
			inSouth := ps.WorkNo >= 2001 && ps.WorkNo <= 2004
			if (ps.Tenant == "north" && !inNorth) || (ps.Tenant == "south" && !inSouth) {
				t.Errorf("agent %d appears under tenant %s (%s)", ps.WorkNo, ps.Tenant, subject)
			}
		}
	}
	if len(perTenant) != 2 || perTenant["north"] == 0 || perTenant["south"] == 0 {
		t.Fatalf("subjects per tenant: %v", perTenant)
	}
	if _, ok := lastOn(schemas.BridgeSubject("south", schemas.BridgeHeartbeat)); !ok {
		opsEventually(t, 10*time.Second, "a south heartbeat", func() bool {
			_, ok := lastOn(schemas.BridgeSubject("south", schemas.BridgeHeartbeat))
			return ok
		})
	}
}
