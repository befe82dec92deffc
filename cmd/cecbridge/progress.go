package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progressBar draws a one-line bar on a terminal (and nothing elsewhere, so
// that logs and pipes stay clean) for long walks.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer // nil: not a terminal
	label string
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer, label string) *progressBar {
	b := &progressBar{label: label}
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		b.w = w
	}
	return b
}

// report redraws the bar at most ten times a second.
func (b *progressBar) report(done, total uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w == nil || total == 0 || time.Since(b.last) < 100*time.Millisecond && done < total {
		return
	}
	b.last = time.Now()
	const width = 30
	filled := int(min(done, total) * width / total)
	fmt.Fprintf(b.w, "\r%s [%s%s] %3d%% %d/%d events", b.label,
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), min(done, total)*100/total, done, total)
	b.drawn = true
}

// done clears the bar's line.
func (b *progressBar) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}
