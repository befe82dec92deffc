package testbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/cecbridge/cecbridge/internal/testbuf"
)

// Writers on many goroutines and a reader at the same time lose no write
// and tear none (the race detector sees the reads and writes).
func TestBufferKeepsEveryConcurrentWrite(t *testing.T) {
	var b testbuf.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("line\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "line\n"); got != 800 {
		t.Fatalf("%d lines kept, want 800", got)
	}
}
