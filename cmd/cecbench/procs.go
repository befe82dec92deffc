package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// childEnv makes this binary run as a helper process of the chaos drill
// instead of the bench: "nats" is a JetStream server on a given port and
// store, which the drill stops and starts as a real process.
const childEnv = "CECBENCH_CHILD"

// childMain runs the helper process the environment asks for, if any, and
// returns its exit code; ok is false when this is not a helper process.
func childMain() (code int, ok bool) {
	switch os.Getenv(childEnv) {
	case "":
		return 0, false
	case "nats":
		if err := natsChild(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "cecbench nats child:", err)
			return 1, true
		}
		return 0, true
	default:
		fmt.Fprintf(os.Stderr, "cecbench: unknown %s=%q\n", childEnv, os.Getenv(childEnv))
		return 2, true
	}
}

// natsChild serves JetStream on -port with its store in -store until
// SIGTERM or SIGINT, then shuts down cleanly (the store is flushed). With
// -cluster it is a node of a JetStream cluster of that name: its routes
// listen on -cluster-port and dial -routes (every node's route URL, its own
// included), as natstest.StartCluster configures its in-process nodes.
func natsChild(args []string) error {
	fs := flag.NewFlagSet("nats", flag.ContinueOnError)
	port := fs.Int("port", 0, "client port")
	store := fs.String("store", "", "JetStream store directory")
	name := fs.String("name", "cecbench-chaos", "server name")
	cluster := fs.String("cluster", "", "cluster name (none: a single server)")
	clusterPort := fs.Int("cluster-port", 0, "route port, with -cluster")
	routes := fs.String("routes", "", "comma-separated route URLs, with -cluster")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *port == 0 || *store == "" {
		return errors.New("-port and -store are required")
	}
	if (*cluster == "") != (*clusterPort == 0) || (*cluster == "") != (*routes == "") {
		return errors.New("-cluster, -cluster-port and -routes go together")
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	e := &embedded{opts: server.Options{
		ServerName: *name, Host: "127.0.0.1", Port: *port,
		JetStream: true, StoreDir: *store, NoSigs: true, NoLog: true,
	}}
	if *cluster != "" {
		e.opts.Cluster = server.ClusterOpts{Name: *cluster, Host: "127.0.0.1", Port: *clusterPort}
		e.opts.Routes = server.RoutesFromStr(*routes)
	}
	if err := e.start(); err != nil {
		return err
	}
	<-stop
	e.shutdown()
	return nil
}

// proc is one child process. Its output goes through a pipe into its log
// file, so a file-size limit set on the child never touches its log.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed once the process has exited
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(sig syscall.Signal) error {
	if p.exited() {
		return fmt.Errorf("%s (pid %d) has exited", p.name, p.pid())
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s to %s: %w", sig, p.name, err)
	}
	return nil
}

// kill ends the process with SIGKILL and waits until it is gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to end (SIGTERM, and SIGCONT in case it is
// stopped) and kills it if it has not ended within grace.
func (p *proc) stop(grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.kill()
	}
}

// procSet owns every child process of a run, so that all of them end
// with it, whatever way it ends.
type procSet struct {
	mu  sync.Mutex
	all []*proc
}

// start runs path with args and env, its output appended to logPath.
func (s *procSet) start(name, path string, args, env []string, logPath string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	out := struct{ io.Writer }{f} // not an *os.File: exec copies through a pipe
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		_ = f.Close() // the log of a process that never ran
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, started: time.Now(), done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = f.Close() // what the process wrote is on disk; a failed close loses no more
		close(p.done)
	}()
	s.mu.Lock()
	s.all = append(s.all, p)
	s.mu.Unlock()
	return p, nil
}

// killAll kills every process still running and waits for them.
func (s *procSet) killAll() {
	s.mu.Lock()
	all := append([]*proc(nil), s.all...)
	s.mu.Unlock()
	for _, p := range all {
		if !p.exited() {
			p.kill()
		}
	}
}

// childEnviron is the environment of the bridge processes: this one's,
// without anything that would reconfigure them behind the drill's back.
func childEnviron(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CECBRIDGE_") || strings.HasPrefix(kv, childEnv+"=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// freePort returns a TCP port on the loopback interface that was free a
// moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer func() { _ = l.Close() }() // only its port was wanted
	return l.Addr().(*net.TCPAddr).Port, nil
}

// natsProc is a nats-server process (this binary as a helper) that can be
// stopped, or killed, and started again on the same ports and store.
type natsProc struct {
	procs   *procSet
	exe     string
	port    int
	store   string
	logPath string
	// name is the server name ("" keeps the child's default); cluster,
	// clusterPort and routes make the server a cluster node.
	name        string
	cluster     string
	clusterPort int
	routes      []string
	p           *proc
}

// errNATSExited: a nats-server process ended before it accepted
// connections (for one, its port was taken).
var errNATSExited = errors.New("nats server exited at start")

func (n *natsProc) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

func (n *natsProc) args() []string {
	args := []string{"-port", strconv.Itoa(n.port), "-store", n.store}
	if n.name != "" {
		args = append(args, "-name", n.name)
	}
	if n.cluster != "" {
		args = append(args, "-cluster", n.cluster, "-cluster-port", strconv.Itoa(n.clusterPort),
			"-routes", strings.Join(n.routes, ","))
	}
	return args
}

// start runs the server and returns once it accepts connections.
func (n *natsProc) start(ctx context.Context) error {
	what := "nats"
	if n.name != "" {
		what += " " + n.name
	}
	p, err := n.procs.start(what, n.exe, n.args(), childEnviron(childEnv+"=nats"), n.logPath)
	if err != nil {
		return err
	}
	n.p = p
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(n.port), 200*time.Millisecond)
		if err == nil {
			_ = c.Close() // a probe: the server accepts connections
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%w (see %s)", errNATSExited, n.logPath)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nats server not accepting connections on port %d: %w", n.port, errors.Join(err, ctx.Err()))
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop shuts the server down cleanly, so its store is whole when it
// starts again.
func (n *natsProc) stop() {
	if n.p != nil {
		n.p.stop(20 * time.Second)
	}
}

// crash kills the server with SIGKILL and waits until it is gone: no
// shutdown, no Raft leadership handed over, only what it had written to
// the kernel stays in its store.
func (n *natsProc) crash() {
	if n.p != nil && !n.p.exited() {
		n.p.kill()
	}
}

// buildBridge compiles cmd/cecbridge into dir (without -race: the bridge
// processes are what the drill measures, not what it checks).
func buildBridge(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "cecbridge")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/cecbridge/cecbridge/cmd/cecbridge")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build cecbridge (or pass --bridge-bin): %w\n%s", err, b)
	}
	return out, nil
}
