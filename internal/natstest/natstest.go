package natstest

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Option adjusts the server options before the first start.
type Option func(*server.Options)

// WithOptions lets a test change any server option (for example
// SyncAlways or MaxPayload).
func WithOptions(f func(*server.Options)) Option { return Option(f) }

// errNotReady: a server's listeners did not open in time (a port taken).
var errNotReady = errors.New("natstest: server not ready")

// node is one embedded server and the options it restarts with.
type node struct {
	opts server.Options
	srv  *server.Server
}

// start starts the server with a copy of its options (the server keeps a
// pointer) and waits, at most ready, for its listeners.
func (n *node) start(ready time.Duration) error {
	o := n.opts
	srv, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("natstest: new server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(ready) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("%w: %s", errNotReady, o.ServerName)
	}
	n.srv = srv
	return nil
}

// pinPorts makes the ports the server chose its own for later restarts.
func (n *node) pinPorts() {
	n.opts.Port = n.srv.Addr().(*net.TCPAddr).Port
	if a := n.srv.ClusterAddr(); a != nil {
		n.opts.Cluster.Port = a.Port
	}
}

// shutdown stops the server and waits for it; a stopped node is a no-op.
func (n *node) shutdown() {
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// Server is a running embedded server. Its methods fail the test on error.
type Server struct {
	t testing.TB
	node
}

// RunServer starts a JetStream-enabled server and shuts it down at the end
// of the test.
func RunServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
	for _, f := range opts {
		f(&o)
	}
	s := &Server{t: t, node: node{opts: o}}
	s.start()
	// Pin the chosen port so that Restart comes back where clients expect it.
	s.pinPorts()
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	if err := s.node.start(10 * time.Second); err != nil {
		s.t.Fatal(err)
	}
}

// URL is the client URL of the server.
func (s *Server) URL() string { return s.srv.ClientURL() }

// StoreDir is the JetStream store directory, kept across restarts.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// Server returns the underlying server (for example to inspect JetStream).
func (s *Server) Server() *server.Server { return s.srv }

// Shutdown stops the server and waits for it. Calling it twice is fine.
func (s *Server) Shutdown() { s.shutdown() }

// Restart shuts the server down (if running) and starts it again on the
// same port with the same store directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start()
}

// Start starts a stopped server again (see Shutdown); same as Restart.
func (s *Server) Start() {
	s.t.Helper()
	if s.srv == nil {
		s.start()
	}
}

// Connect opens a client connection that reconnects forever with a short
// wait, so that it survives Restart, and closes it at the end of the test.
// Extra options are applied after those defaults.
func (s *Server) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	return connect(t, s.URL(), opts)
}

func connect(t testing.TB, url string, opts []nats.Option) *nats.Conn {
	t.Helper()
	base := []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
		nats.ReconnectJitter(0, 0),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// ConnectLater is Connect for a server that is not up yet: the client
// keeps trying in the background (as the bridge's does) and buffers
// nothing meanwhile.
func (s *Server) ConnectLater(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	base := []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
		nats.ReconnectJitter(0, 0),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1),
	}
	nc, err := nats.Connect(s.clientURL(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// clientURL is the client URL, also while the server is stopped.
func (s *Server) clientURL() string {
	return fmt.Sprintf("nats://%s:%d", s.opts.Host, s.opts.Port)
}

// JetStream returns a JetStream context on nc.
func JetStream(t testing.TB, nc *nats.Conn, opts ...jetstream.JetStreamOpt) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}
