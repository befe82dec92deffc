package cec_test

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

// tlsSim serves a simulator over HTTPS with httptest's self-signed
// certificate (valid for 127.0.0.1 and example.com, not localhost) and
// returns the server and a CA file that trusts it.
func tlsSim(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	sim, err := cecsim.New(cecsim.Config{Agents: 3, LongPollHold: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(sim.Handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, ca
}

func clientFor(t *testing.T, base, caFile string, log *slog.Logger) *cec.Client {
	t.Helper()
	c, err := cec.New(cec.Config{FabricURL: base, GatewayURL: base, AppKey: "app-key", AppSecret: "app-secret",
		RequestTimeout: time.Second, LongPollTimeout: time.Second, CAFile: caFile, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// checkNoAddress fails if text reveals where the vendor lives or a secret.
func checkNoAddress(t *testing.T, text, base string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{base, u.Host, ":" + u.Port(), "https://", "http://", "/apigovernance", "/agentgateway", "app-secret", "agent-pass"} {
		if strings.Contains(text, leak) {
			t.Errorf("%q reveals %q", text, leak)
		}
	}
}

// A transport failure says what kind it was, without URLs. A query that
// needs a token names the cause even when the caller's deadline ends the
// wait for the (still retrying) token fetch.
func TestTransportErrorClasses(t *testing.T) {
	tlsSrv, ca := tlsSim(t)
	plain := startSim(t, cecsim.Config{Agents: 3})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := "http://" + ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, base, ca, class string
	}{
		{"unknown CA", tlsSrv.URL, "", "tls: certificate not trusted"},
		{"hostname mismatch", strings.Replace(tlsSrv.URL, "127.0.0.1", "localhost", 1), ca, "tls: hostname mismatch"},
		{"plain HTTP server", strings.Replace(plain.URL(), "http://", "https://", 1), "", "tls: not a TLS server"},
		{"closed port", closedPort, "", "connection refused"},
		{"unresolvable name", "http://cecbridge-test.invalid:8443", "", "name not resolved"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := clientFor(t, tc.base, tc.ca, nil)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := c.QueryAgentInfo(ctx)
			if err == nil {
				t.Fatal("query succeeded")
			}
			if !strings.Contains(err.Error(), tc.class) {
				t.Errorf("error %q does not name %q", err, tc.class)
			}
			if !errors.Is(err, context.DeadlineExceeded) || cec.Retryable(err) {
				t.Errorf("error %q: the caller's deadline must stay the (non-retryable) class", err)
			}
			checkNoAddress(t, err.Error(), tc.base)
		})
	}
}

// A gateway request has no token in the way: its *Error carries the class
// and ErrUpstream, and so does the sign-in failure the session logs.
func TestGatewayTLSFailureLogged(t *testing.T) {
	srv, _ := tlsSim(t)
	var logs testbuf.Buffer
	c := clientFor(t, srv.URL, "", slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	s := c.NewSession(cec.SessionConfig{AgentID: 1001, Password: "agent-pass"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testwait.For(t, 5*time.Second, "a failed sign-in logged", func() bool { return strings.Contains(logs.String(), "cec sign-in failed") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "login: tls: certificate not trusted (unknown authority) (upstream failure)") {
		t.Errorf("sign-in failure not classified:\n%s", out)
	}
	checkNoAddress(t, out, srv.URL)
	if s.Ready() {
		t.Fatal("signed in through an untrusted certificate")
	}
}

// With the CA file the same server is trusted: queries and sign-in work.
func TestTLSWithCA(t *testing.T) {
	srv, ca := tlsSim(t)
	c := clientFor(t, srv.URL, ca, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.QueryAgentInfo(ctx); err != nil {
		t.Fatalf("query with the CA: %v", err)
	}
	s := runSession(t, c, cec.SessionConfig{})
	if _, err := s.AllCallInfo(ctx, 1002); err != nil {
		t.Fatalf("gateway query with the CA: %v", err)
	}
}

// A refused budget wait says it was the budget, and still matches the
// context error behind it.
func TestBudgetRefusal(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 3})

	// One request per hour: the second cannot get a slot before a short
	// deadline, and x/time/rate refuses at once without waiting for it.
	lim := rate.NewLimiter(rate.Every(time.Hour), 1)
	c := newClient(t, sim, func(cfg *cec.Config) { cfg.Limiter = lim })
	if _, err := c.QueryAgentInfo(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.QueryAgentInfo(ctx)
	if err == nil || !strings.Contains(err.Error(), "request budget") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("budget exhausted before the deadline: %v", err)
	}
	if cec.Retryable(err) || time.Since(start) > 4*time.Second {
		t.Fatalf("refusal retryable or slow: %v after %v", err, time.Since(start))
	}

	// A burst of zero can never grant a request.
	c = newClient(t, sim, func(cfg *cec.Config) { cfg.Limiter = rate.NewLimiter(1, 0) })
	_, err = c.QueryAgentInfo(context.Background())
	if err == nil || !strings.Contains(err.Error(), "request budget") || !strings.Contains(err.Error(), "burst") {
		t.Fatalf("zero burst: %v", err)
	}

	// Cancelled while waiting: request budget, context.Canceled.
	c = newClient(t, sim, func(cfg *cec.Config) { cfg.Limiter = &countingLimiter{} })
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	_, err = c.QueryAgentInfo(cctx)
	if err == nil || !strings.Contains(err.Error(), "request budget") || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// When Run ends, the session signs out and leaves no connection open to
// the gateway, so the gateway's own graceful shutdown is not held up.
func TestStoppedSessionReleasesConnections(t *testing.T) {
	sim, err := cecsim.New(cecsim.Config{Agents: 3, LongPollHold: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	open := map[net.Conn]http.ConnState{}
	srv := httptest.NewUnstartedServer(sim.Handler())
	srv.Config.ConnState = func(conn net.Conn, st http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		if st == http.StateClosed || st == http.StateHijacked {
			delete(open, conn)
			return
		}
		open[conn] = st
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s, stop := startSession(t, clientFor(t, srv.URL, "", nil), cec.SessionConfig{})
	// Queries alongside the long poll: more than one pooled connection.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := s.AllCallInfo(context.Background(), 1002); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 2*time.Second, "every gateway connection closed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(open) == 0
	})
}
