package cec_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec"
)

// A gateway answer that says retcode "0" with an error status is not an
// answer: "no call" must never come from a request that failed.
func TestSuccessCodeInAnErrorAnswerIsAnError(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /agentgateway/resource/onlineagent/{id}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Set-GUID", "JSESSIONID=11111111-2222-3333-4444-555555555555.AgentGateway0")
		_, _ = w.Write([]byte(`{"message":"success","retcode":"0","result":{"workno":"1001"}}`))
	})
	mux.HandleFunc("GET /agentgateway/resource/agentevent/{id}", func(w http.ResponseWriter, r *http.Request) {
		select { // an empty long poll
		case <-r.Context().Done():
		case <-time.After(50 * time.Millisecond):
		}
		_, _ = w.Write([]byte(`{"message":"","retcode":"0"}`))
	})
	mux.HandleFunc("DELETE /agentgateway/resource/onlineagent/{id}/logout", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"message":"success","retcode":"0"}`))
	})
	mux.HandleFunc("GET /agentgateway/resource/calldata/{id}/allcallinfoEx/{w}", func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusNotFound
		if strings.HasSuffix(r.URL.Path, "/1002") {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"message":"","retcode":"0","result":[]}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	client, err := cec.New(cec.Config{FabricURL: srv.URL, GatewayURL: srv.URL, AppKey: "k", AppSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	sess := runSession(t, client, cec.SessionConfig{Password: "p"})
	ctx := context.Background()

	ids, err := sess.AllCallInfo(ctx, 1003)
	if err == nil || ids != nil {
		t.Fatalf("404 with retcode 0 gave %v, %v; want an error and no call list", ids, err)
	}
	var ce *cec.Error
	if !errors.As(err, &ce) || ce.HTTPStatus != http.StatusNotFound {
		t.Fatalf("error %v does not carry the HTTP status", err)
	}
	// The same body with 200 is a real "no call".
	if ids, err := sess.AllCallInfo(ctx, 1002); err != nil || ids == nil || len(ids) != 0 {
		t.Fatalf("200 with retcode 0 and [] gave %v, %v; want an empty list", ids, err)
	}
}
