package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	stdlog "log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// NATS authentication and TLS options, and vendor TLS with a custom CA.

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
	var logs testbuf.Buffer
	nc, err := app.ConnectNATS(c, debugLogger(&logs))
	if err != nil {
		t.Fatalf("ConnectNATS: %v", err)
	}
	defer nc.Close()
	testwait.For(t, 10*time.Second, "the connection", nc.IsConnected)
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
	var logs testbuf.Buffer
	nc, err := app.ConnectNATS(c, debugLogger(&logs))
	if err != nil {
		if !want.MatchString(err.Error()) {
			t.Fatalf("ConnectNATS error %q does not match %s", err, want)
		}
		return
	}
	defer nc.Close()
	testwait.For(t, 10*time.Second, "the failure to be reported ("+want.String()+")", func() bool {
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
	var serverLog testbuf.Buffer
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
	var clientLog testbuf.Buffer
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
	testwait.For(t, 5*time.Second, "the server to see a refused handshake", func() bool {
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
