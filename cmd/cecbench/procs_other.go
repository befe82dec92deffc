//go:build !linux

package main

import (
	"errors"
	"syscall"
)

// childAttr puts a child in a process group of its own, so that a Ctrl-C
// reaches only the drill, which then ends its children in order.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// limitFileSize needs prlimit(2), which only Linux has; the drill then
// skips filling the spool's disk and says so.
func limitFileSize(int, uint64) (func() error, error) {
	return nil, errors.ErrUnsupported
}
