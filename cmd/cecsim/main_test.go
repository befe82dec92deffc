package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out testbuf.Buffer
	ready := make(chan *cecsim.Sim, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- runWith(ctx, []string{"-addr", "127.0.0.1:0", "-agents", "20", "-auth", "static", "-cms-lag", "2s", "-cms-unlicensed", "-cms-refuse-client"}, &out,
			func(s *cecsim.Sim) { ready <- s })
	}()
	var sim *cecsim.Sim
	select {
	case sim = <-ready:
	case err := <-errc:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("simulator never became ready")
	}
	resp, err := http.Post(sim.URL()+"/apigovernance/api/oauth/tokenByAkSk", "application/json",
		strings.NewReader(`{"app_key":"app-key","app_secret":"app-secret"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("token: %d", resp.StatusCode)
	}
	if sim.CMSLag() != 2*time.Second || sim.CMSLicensed() || !sim.CMSClientRefused() {
		t.Errorf("CMS flags not applied: lag %s, licensed %v, client refused %v", sim.CMSLag(), sim.CMSLicensed(), sim.CMSClientRefused())
	}
	for _, want := range []string{sim.URL(), "app_key=app-key", "cms_ak=cms-ak", "/cecsim/"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("startup log lacks %q:\n%s", want, out.String())
		}
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
}

func TestRunRejectsBadAuth(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-auth", "maybe"}, &out); err == nil {
		t.Error("run accepted -auth maybe")
	}
}
