package app

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cecbridge/cecbridge/poller"
)

// HTTPAddr is the address the metrics and health listener is bound to
// ("" until it listens, or when http.listen is off); with http.listen
// "127.0.0.1:0" it tells the chosen port.
func (b *Bridge) HTTPAddr() string {
	if p := b.httpAddr.Load(); p != nil {
		return *p
	}
	return ""
}

// readiness says what is not ready: NATS, the streams, the spool
// directory, the lookup service, every tenant's token, sessions and lease.
func (b *Bridge) readiness(ctx context.Context) map[string]string {
	problems := map[string]string{}
	switch {
	case b.nc.Status() != nats.CONNECTED:
		problems["nats"] = "not connected (" + b.nc.Status().String() + ")"
	case !b.provisioned.Load():
		why := "being provisioned"
		if p := b.provisionErr.Load(); p != nil {
			why = "not provisioned yet: " + *p
		}
		problems["streams"] = why
	case !b.streamsReady(ctx):
		problems["streams"] = "stream " + b.cfg.Streams.Events + " or " + b.cfg.Streams.State + " not reachable"
	}
	if err := b.pub.SpoolWritable(); err != nil {
		problems["spool"] = err.Error()
	}
	if !b.cfg.Lookup.Disabled && b.lookups.Load() == nil {
		problems["lookups"] = "lookup service not started yet"
	}
	for _, tr := range b.tenants {
		p := tr.poller()
		if p == nil {
			continue // a standby: another instance holds this tenant's lease
		}
		if t := tr.term.Load(); t != nil && !t.Valid() {
			problems["tenant."+tr.name+".lease"] = "lease renewal unconfirmed: polling goes on, publishing waits"
		}
		if !p.Rebuilt() {
			if b.nc.Status() == nats.CONNECTED { // otherwise "nats" says why
				problems["tenant."+tr.name+".state"] = "rebuilding the tenant's state from the stream"
			}
			continue // polling, and the token it fetches, begin after that
		}
		if exp := tr.client.TokenExpiry(); exp.IsZero() || time.Now().After(exp) {
			problems["tenant."+tr.name+".token"] = "no valid API Fabric token"
		}
		for _, s := range tr.sessions {
			if !s.Ready() {
				problems["tenant."+tr.name+".session"] = "monitoring session not signed in (" + s.State().String() + ")"
			}
		}
	}
	return problems
}

// degraded says what works with less than it was configured for without
// making the bridge unready: a CMS sweep that fails, so that agents are
// polled one by one.
func (b *Bridge) degraded() map[string]string {
	out := map[string]string{}
	for _, tr := range b.tenants {
		p := tr.poller()
		if p == nil || tr.cms == nil {
			continue
		}
		switch st := p.Stats(); st.Sweep {
		case poller.SweepUnavailable:
			out["tenant."+tr.name+".cms"] = "CMS sweep unavailable (" + st.SweepReason + "): every agent is polled one by one"
		case poller.SweepPartial:
			out["tenant."+tr.name+".cms"] = "some CMS sweep requests fail: their agents are polled one by one"
		}
	}
	return out
}

// httpServer is the running /metrics, /healthz and /readyz listener.
type httpServer struct {
	srv  *http.Server
	done chan error
}

// listenHTTP opens the listener and serves /metrics, /healthz and /readyz
// in the background: health answers from the first moment, before NATS or
// the streams are there.
func (b *Bridge) listenHTTP(addr string) (*httpServer, error) {
	b.metrics.reg.MustRegister(newStateCollector(b), newReplicaCollector(b), b.diag)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(b.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSONStatus(w, http.StatusOK, map[string]any{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		problems := b.readiness(r.Context())
		body, status := map[string]any{"status": "ready"}, http.StatusOK
		if len(problems) > 0 {
			body, status = map[string]any{"status": "not ready", "not_ready": problems}, http.StatusServiceUnavailable
		}
		body["streams"] = b.streamsHealth(r.Context()) // replica health, so an operator sees a lagging or lost replica
		if fs := b.diag.Findings(); len(fs) > 0 {
			body["diagnosis"] = fs // the vendor contradicts the configuration: what, and the fix
		}
		if d := b.degraded(); len(d) > 0 {
			body["degraded"] = d // working, with less than configured
		}
		if b.assign != nil {
			body["assignment"] = b.assign.snapshot() // which tenants this instance polls, and why
		}
		writeJSONStatus(w, status, body)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	bound := ln.Addr().String()
	b.httpAddr.Store(&bound)
	h := &httpServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, done: make(chan error, 1)}
	b.log.Info("metrics and health endpoints up", "addr", bound)
	go func() {
		err := h.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		h.done <- err
	}()
	return h, nil
}

func (h *httpServer) stop(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	if serveErr := <-h.done; serveErr != nil {
		return serveErr
	}
	return err
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
