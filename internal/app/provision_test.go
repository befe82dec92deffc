package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
	"github.com/cecbridge/cecbridge/internal/natstest"
	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
)

// startupEnv is a NATS server and a configuration whose tenant is never
// reached: enough to watch a bridge provision its streams.
func startupEnv(t *testing.T) (*nats.Conn, jetstream.JetStream, configs.Bridge) {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := srv.Connect(t)
	cfg := configs.WithDefaults(configs.Bridge{
		NATS:    configs.NATS{URLs: []string{srv.URL()}},
		Tenants: []configs.Tenant{tenantCfg("start", "http://127.0.0.1:1", "k", "s", "p")},
	})
	return nc, natstest.JetStream(t, nc), cfg
}

// A stream that no retry can fix (another stream already takes the
// events' subjects) ends start-up at once with the reason, instead of
// being retried as "not ready" until the deadline.
func TestIncompatibleStreamFailsStartFast(t *testing.T) {
	nc, js, cfg := startupEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SOMEONE_ELSES", Subjects: []string{schemas.AllEvents}}); err != nil {
		t.Fatal(err)
	}
	var logs testbuf.Buffer
	b, err := app.New(cfg, nc, debugLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = b.Serve(ctx)
	if !errors.Is(err, publisher.ErrPermanent) || time.Since(start) > 4*time.Second {
		t.Fatalf("Serve returned %v after %s; want a prompt ErrPermanent", err, time.Since(start).Round(time.Millisecond))
	}
}

// A stream an operator changed (a longer retention) is used as it is, and
// the start-up log names the difference.
func TestStreamDriftIsReportedNotOverwritten(t *testing.T) {
	nc, js, cfg := startupEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := publisher.Provision(ctx, js, publisher.Config{MaxAge: 30 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	var logs testbuf.Buffer
	rb := runBridge(t, cfg, nc, debugLogger(&logs))
	testwait.For(t, 10*time.Second, "the drift in the log", func() bool {
		return strings.Contains(logs.String(), "streams differ from the configuration")
	})
	rb.stop()
	s, err := js.Stream(ctx, schemas.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 30*24*time.Hour {
		t.Fatalf("the bridge overwrote max_age with %s", got)
	}
	if !strings.Contains(logs.String(), "streams differ from the configuration") || !strings.Contains(logs.String(), "max_age wanted 168h0m0s, live 720h0m0s") {
		t.Fatalf("the log does not name the difference:\n%s", logs.String())
	}
}
