// Package testbuf is the one sink a test reads while the code under test
// still writes to it from its own goroutines: a log, a program's output.
// It is imported by tests and test-support packages only.
package testbuf
