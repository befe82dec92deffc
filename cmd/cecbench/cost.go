package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// cpuSeconds is the process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// memSample is the heap in use and the resident set, after a GC.
type memSample struct {
	HeapBytes uint64 `json:"heap_bytes"`
	RSSBytes  uint64 `json:"rss_bytes"`
}

func sampleMem() memSample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{HeapBytes: ms.HeapAlloc, RSSBytes: rssBytes()}
}

// rssBytes reads VmRSS from /proc/self/status (0 where there is none).
func rssBytes() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }() // read only
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				kb, _ := strconv.ParseUint(fields[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// embedded is an in-process nats-server with JetStream that can be
// restarted on the same port and store directory.
type embedded struct {
	opts server.Options
	srv  *server.Server
}

func startEmbedded(dir string) (*embedded, error) {
	e := &embedded{opts: server.Options{
		ServerName: "cecbench", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	}}
	if err := e.start(); err != nil {
		return nil, err
	}
	e.opts.Port = e.srv.Addr().(*net.TCPAddr).Port
	return e, nil
}

func (e *embedded) start() error {
	o := e.opts
	srv, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("embedded nats: not ready")
	}
	e.srv = srv
	return nil
}

func (e *embedded) url() string { return e.srv.ClientURL() }

func (e *embedded) shutdown() {
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
		e.srv = nil
	}
}

// restart stops the server and starts it again on the same port and store.
func (e *embedded) restart() error {
	e.shutdown()
	return e.start()
}
