package cec_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec"
)

// Reason names an error from a short fixed vocabulary: never the vendor's
// message, a URL or a secret, and a vendor code only when it looks like one.
func TestReasonIsAShortFixedVocabulary(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("poll agent 1001: %w", err) }
	for want, err := range map[string]error{
		"":                    nil,
		"rate_limited":        wrap(&cec.Error{Endpoint: "allcallinfoEx", HTTPStatus: 429, Message: "slow down", Err: cec.ErrRateLimited}),
		"session_lost":        &cec.Error{Endpoint: "allcallinfoEx", Code: "100-006", Message: "guid=secret-guid", Err: cec.ErrSessionLost},
		"session_not_ready":   wrap(&cec.Error{Endpoint: "allcallinfoEx", Err: cec.ErrSessionNotReady}),
		"signature_refused":   &cec.Error{Endpoint: "queryagentcalls", HTTPStatus: 401, Err: cec.ErrSignatureRefused},
		"unauthorized":        &cec.Error{Endpoint: "queryAgentInfo", HTTPStatus: 403, Err: cec.ErrUnauthorized},
		"bad_response":        &cec.Error{Endpoint: "queryPhone", Message: "truncated body", Excerpt: `{"token":"abc`, Err: cec.ErrBadResponse},
		"page_drift":          wrap(&cec.Error{Endpoint: "queryPhone", Err: cec.ErrPageDrift}),
		"upstream":            &cec.Error{Endpoint: "queryPhone", HTTPStatus: 502, Err: cec.ErrUpstream},
		"vendor_code:105-009": &cec.Error{Endpoint: "allcallinfoEx", Code: "105-009", Message: "agent 1001 at 10.0.0.5", Err: cec.ErrVendor},
		"vendor":              &cec.Error{Endpoint: "allcallinfoEx", Code: "a code with spaces and <tags>", Err: cec.ErrVendor},
		"timeout":             wrap(context.DeadlineExceeded),
		"canceled":            wrap(context.Canceled),
		"error":               errors.New("https://user:password@cec.example.com refused"),
	} {
		if got := cec.Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

// A request that gets no answer within the client's request timeout is a
// "timeout", not the error's text.
func TestReasonOfARequestTimeoutIsTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for the handler
	c, err := cec.New(cec.Config{FabricURL: srv.URL, AppKey: "key", AppSecret: "app-secret", RequestTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.FetchToken(t.Context(), time.Minute)
	if !errors.Is(err, cec.ErrUpstream) {
		t.Fatalf("err = %v, want ErrUpstream", err)
	}
	if got := cec.Reason(err); got != "timeout" {
		t.Fatalf("Reason(%v) = %q, want timeout", err, got)
	}
}

// Every configuration problem is reported at once, under ErrConfig.
func TestConfigErrorsJoinEveryProblem(t *testing.T) {
	_, err := cec.New(cec.Config{FabricURL: "ftp://x", GatewayURL: "not a url"})
	if !errors.Is(err, cec.ErrConfig) {
		t.Fatalf("New: err = %v, want ErrConfig", err)
	}
	for _, want := range []string{`invalid base URL "ftp://x"`, `invalid base URL "not a url"`, "AppKey and AppSecret are required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New: %q does not say %q", err, want)
		}
	}
	c, err := cec.New(cec.Config{GatewayURL: "https://gw.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.NewCMS(cec.CMSConfig{URL: "https://cms.example.com", AK: "a/k", SK: "sk", CCID: 0, Timestamp: cec.TimestampSeconds,
		VDNs: []cec.VDN{{ID: 1}, {ID: 1}}})
	if !errors.Is(err, cec.ErrConfig) {
		t.Fatalf("NewCMS: err = %v, want ErrConfig", err)
	}
	for _, want := range []string{"must not contain '/'", "ccId must be 1-65535", "VDN 1 given twice", "only one CMS VDN may cover every other agent"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NewCMS: %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "a/k") {
		t.Errorf("NewCMS: %q quotes the AK", err)
	}
}
