package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// "cecbridge dev" serves /metrics, /healthz and /readyz on loopback and
// prints where.
func TestDevServesMetricsAndHealthOnLoopback(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr testbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--nats-port", "0", "--http-port", "0", "--agents", "10"}, &stdout, &stderr)
	}()
	addrRE := regexp.MustCompile(`curl http://(127\.0\.0\.1:\d+)/metrics`)
	testwait.For(t, 20*time.Second, "dev to print the HTTP address", func() bool { return addrRE.MatchString(stdout.String()) })
	base := "http://" + addrRE.FindStringSubmatch(stdout.String())[1]
	testwait.For(t, 20*time.Second, "/readyz to answer 200", func() bool {
		code, _ := get(t, base+"/readyz")
		return code == http.StatusOK
	})
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || !strings.Contains(body, "alive") {
		t.Errorf("/healthz: %d %s", code, body)
	}
	testwait.For(t, 20*time.Second, "/metrics to show the signed-in monitoring session", func() bool {
		code, body := get(t, base+"/metrics")
		return code == http.StatusOK && strings.Contains(body, `cecbridge_gateway_sessions{state="ready",tenant="dev"} 1`)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop")
	}
}
