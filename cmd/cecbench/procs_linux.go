package main

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// childAttr puts a child in a process group of its own (a Ctrl-C reaches
// only the drill, which then ends its children in order) and has the kernel
// kill it should the drill die without doing so.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// limitFileSize sets the soft RLIMIT_FSIZE of process pid: a write past
// that offset in any file writes what fits and then fails (EFBIG), as on
// a full disk. restore puts the previous limit back.
func limitFileSize(pid int, bytes uint64) (restore func() error, err error) {
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		return nil, fmt.Errorf("read file size limit of %d: %w", pid, err)
	}
	lim := unix.Rlimit{Cur: min(bytes, old.Max), Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &lim, nil); err != nil {
		return nil, fmt.Errorf("limit file size of %d: %w", pid, err)
	}
	return func() error {
		if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &old, nil); err != nil {
			return fmt.Errorf("restore file size limit of %d: %w", pid, err)
		}
		return nil
	}, nil
}
