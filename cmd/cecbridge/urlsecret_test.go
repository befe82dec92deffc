package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim/cecsimtest"
)

// A password or token written into a NATS URL authenticates the bridge,
// lookup and tail, and never shows in the log, in check-config --print or
// in a connection error.
func TestNATSURLSecretsNeverPrinted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole bridge")
	}
	sim := cecsimtest.Start(t, cecsim.Config{Agents: 3, LongPollHold: 100 * time.Millisecond})

	cases := []struct {
		name, secret string
		auth         func(*server.Options)
		userInfo     string
		fromEnv      bool // the URL comes from CECBRIDGE_NATS_URLS, not the file
	}{
		{"password in the file", "UrlNatsPass-8qv", func(o *server.Options) { o.Username, o.Password = "bridge", "UrlNatsPass-8qv" }, "bridge:UrlNatsPass-8qv", false},
		{"token in the environment", "UrlNatsToken-5kd", func(o *server.Options) { o.Authorization = "UrlNatsToken-5kd" }, "UrlNatsToken-5kd", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := natstest.RunServer(t, natstest.WithOptions(c.auth))
			hostPort := strings.TrimPrefix(srv.URL(), "nats://")
			url := "nats://" + c.userInfo + "@" + hostPort
			fileURL := url
			if c.fromEnv {
				t.Setenv("CECBRIDGE_NATS_URLS", url)
				fileURL = "nats://" + hostPort // overridden
			}
			cfgFile := writeFile(t, "bridge.yaml", fmt.Sprintf(`
nats:
  urls: [%q]
  reconnect_wait: 100ms
log:
  level: debug
  format: json
tenants:
  - name: urls
    fabric_url: %q
    gateway_url: %q
    app_key: app-key
    app_secret: app-secret
    monitors:
      - agent_id: 1001
        password: agent-pass
    intervals:
      calls: 50ms
      heartbeat: 200ms
`, fileURL, sim.URL(), sim.URL()))
			var shown []string // everything printed that the secret must not be in
			printed, _, err := runCmd(t, "check-config", cfgFile, "--print")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(printed, "@"+hostPort) {
				t.Errorf("--print does not show the server:\n%s", printed)
			}
			shown = append(shown, printed)

			// The bridge connects with the URL's user info; lookup and tail
			// do too while it runs.
			ctx, cancel := context.WithCancel(t.Context())
			var logs testbuf.Buffer
			done := make(chan error, 1)
			go func() { done <- run(ctx, []string{"run", "--config", cfgFile}, io.Discard, &logs) }()
			testwait.Until(t, "a lookup through the URL's credentials", func() bool {
				out, _, err := runCLI(t, lookupCLI, "agents", "--tenant", "urls", "--server", url)
				return err == nil && strings.Contains(out, "1001")
			})
			out, _, err := runCLI(t, tailCLI, "--server", url, "--seq", "1", "--count", "1")
			if err != nil || !strings.Contains(out, "urls.") {
				t.Fatalf("tail through the URL's credentials: %v\n%s", err, out)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run: %v", err)
			}
			if !strings.Contains(logs.String(), "nats connected") || !strings.Contains(logs.String(), "starting cecbridge") {
				t.Fatalf("the log lacks the start-up and connect lines:\n%s", logs.String())
			}
			shown = append(shown, logs.String())

			// Connection errors: nobody listening, a port that does not
			// parse, and wrong credentials.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			closed := ln.Addr().String()
			ln.Close()
			wrong := strings.Replace(url, c.secret, c.secret+"-wrong", 1)
			for _, u := range []string{"nats://" + c.userInfo + "@" + closed, "nats://" + c.userInfo + "@127.0.0.1:port", wrong} {
				_, _, lerr := runCLI(t, lookupCLI, "agents", "--server", u)
				_, _, terr := runCLI(t, tailCLI, "--server", u, "--count", "1")
				if lerr == nil || terr == nil {
					t.Fatalf("%s: lookup %v, tail %v: want connection errors", u, lerr, terr)
				}
				shown = append(shown, lerr.Error(), terr.Error())
			}
			for _, text := range shown {
				if strings.Contains(text, c.secret) {
					t.Errorf("the secret %q is shown:\n%s", c.secret, text)
				}
			}
		})
	}
}

// The health probe's URL may carry user info too; its errors hide it.
func TestHealthURLSecretsNeverPrinted(t *testing.T) {
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, u := range []string{
		strings.Replace(notReady.URL, "http://", "http://HealthToken-3mz@", 1) + "/readyz",
		"http://probe:HealthPass-3mz@" + closed + "/readyz",
		"http://HealthToken-3mz@" + closed + "/readyz",
	} {
		_, _, err := runCmd(t, "health", "--url", u)
		if err == nil || strings.Contains(err.Error(), "-3mz") {
			t.Errorf("health --url %s: %v", configs.RedactURL(u), err)
		}
	}
}
