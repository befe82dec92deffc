// Package cecsimtest starts the simulator for a test: on a loopback port,
// closed when the test ends. It is imported by tests and test-support
// packages only.
package cecsimtest
