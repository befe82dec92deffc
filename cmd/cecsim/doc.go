// Command cecsim runs the CEC simulator (package poller/cec/cecsim) as a
// standalone server on loopback with a lively default workload, and prints
// the base URL, the test credentials and the paths to use.
//
//	go run ./cmd/cecsim -addr 127.0.0.1:8090 -agents 200 -seed 1 -auth dynamic
//	go run ./cmd/cecsim -cms-ak my-ak -cms-sk my-sk -cms-lag 2s   # CMS with 2 s of lag
//
// With -replay DIR it serves a captured tenant (cecbridge probe --capture
// DIR): its gap answers, example bodies and world shape, with a static
// world holding the calls seen when it was captured.
//
// It stops on SIGINT or SIGTERM.
package main
