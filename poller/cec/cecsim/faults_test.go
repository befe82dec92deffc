package cecsim_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

func TestFaults(t *testing.T) {
	sim := start(t, cecsim.Config{AuthMode: cecsim.AuthStatic})
	tok := token(t, sim, "")
	g, _ := login(t, sim, "1001", false)
	fabric := func() reply {
		return do(t, "GET", sim.URL()+"/apiaccess/CC-Management/v1/queryAgentInfo", bearer(tok), nil)
	}
	gateway := func() reply { return gw(t, sim, "GET", "calldata/1001/allcallinfoEx/1002", g) }

	t.Run("latency", func(t *testing.T) {
		sim.Inject(cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultLatency, Latency: 150 * time.Millisecond, Count: 1})
		begin := time.Now()
		if r := fabric(); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		if d := time.Since(begin); d < 150*time.Millisecond {
			t.Errorf("answered after %v, before the injected latency", d)
		}
	})
	t.Run("latency respects the request context", func(t *testing.T) {
		id := sim.Inject(cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultLatency, Latency: time.Hour})
		defer sim.ClearFaults()
		client := &http.Client{Timeout: 100 * time.Millisecond}
		req, _ := http.NewRequest("GET", sim.URL()+"/apiaccess/CC-Management/v1/queryAgentInfo", nil)
		if _, err := client.Do(req); err == nil {
			t.Fatalf("fault %d: request answered despite an hour of latency", id)
		}
	})
	t.Run("http status", func(t *testing.T) {
		sim.Inject(cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultHTTPStatus, Status: 503, Count: 1})
		r := fabric()
		if r.status != 503 || !strings.Contains(string(r.body), "<html>") {
			t.Errorf("got %d %s", r.status, r.body)
		}
		if r := fabric(); r.status != 200 {
			t.Errorf("Count 1 fault fired twice: %d", r.status)
		}
	})
	t.Run("garbled", func(t *testing.T) {
		sim.Inject(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultGarbled, Count: 1})
		r := gateway()
		if r.status != 200 || json.Valid(r.body) {
			t.Errorf("garbled body is valid JSON: %s", r.body)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		sim.Inject(cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultTruncated, Count: 1})
		_, err := tryDo("GET", sim.URL()+"/apiaccess/CC-Management/v1/queryAgentInfo", bearer(tok), nil)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("truncated body read: %v, want unexpected EOF", err)
		}
	})
	t.Run("throttle", func(t *testing.T) {
		sim.Inject(cecsim.Fault{Endpoint: "queryAgentInfo", Kind: cecsim.FaultThrottle, Count: 1})
		if r := fabric(); r.status != 429 || r.header.Get("Retry-After") != "1" {
			t.Errorf("fabric throttle: %d %v", r.status, r.header)
		}
		sim.Inject(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultThrottle, Count: 1})
		if r := gateway(); r.status != 200 || retcode(t, r) != "000-007" {
			t.Errorf("gateway throttle: %d %s", r.status, r.body)
		}
	})
	t.Run("vendor code", func(t *testing.T) {
		sim.Inject(cecsim.Fault{Endpoint: "allcallinfoEx", Kind: cecsim.FaultVendorCode, Code: "100-007", Count: 1})
		if r := gateway(); retcode(t, r) != "100-007" {
			t.Errorf("gateway: %s", r.body)
		}
		sim.Inject(cecsim.Fault{Endpoint: "queryPhone", Kind: cecsim.FaultVendorCode, Code: "1", Count: 1})
		r := do(t, "POST", sim.URL()+"/apiaccess/CC-Management/v2/mobileAgent/queryPhone", bearer(tok), nil)
		if m := r.json(t); r.status != 200 || m["retCode"] != "1" {
			t.Errorf("fabric: %d %s", r.status, r.body)
		}
	})
	t.Run("all endpoints and probability", func(t *testing.T) {
		sim.Inject(cecsim.Fault{Kind: cecsim.FaultHTTPStatus, Probability: 0.5})
		defer sim.ClearFaults()
		bad := 0
		for range 200 {
			if gateway().status == 502 {
				bad++
			}
		}
		if bad < 50 || bad > 150 {
			t.Errorf("%d of 200 requests failed at probability 0.5", bad)
		}
	})
	sim.ClearFaults()
	if r := fabric(); r.status != 200 {
		t.Errorf("after ClearFaults: %d", r.status)
	}
}
