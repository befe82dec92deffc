package publisher

import (
	"errors"
	"fmt"
	"os"
)

// ErrSpoolUnwritable is wrapped by [Publisher.SpoolWritable]'s error.
var ErrSpoolUnwritable = errors.New("publisher: spool directory not writable")

// SpoolWritable says whether the spool can take records now: nil without a
// spool, or when the directory took its last write (the start-up probe, or
// the last record spooled). After a failure, each call probes the
// directory again (create, write and remove a small file), so the answer
// clears once space returns. It is meant for a readiness check.
func (p *Publisher) SpoolWritable() error {
	if p.sp == nil {
		return nil
	}
	p.mu.Lock()
	failed := p.sp.writeErr
	p.mu.Unlock()
	if failed == nil {
		return nil
	}
	if err := probeDir(p.cfg.SpoolDir); err != nil {
		return fmt.Errorf("%w: %w", ErrSpoolUnwritable, err)
	}
	p.mu.Lock()
	if p.sp.writeErr == failed { //nolint:errorlint // identity: clear only the failure this probe answered, not a newer one
		p.sp.writeErr = nil
	}
	p.mu.Unlock()
	return nil
}

// probeDir creates, writes and removes a small file in dir.
func probeDir(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(make([]byte, 4096))
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	return errors.Join(werr, cerr, rerr)
}
