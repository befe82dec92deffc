package testwait_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	testwait.For(t, 5*time.Second, "three checks", func() bool { return n.Add(1) >= 3 })
	if n.Load() != 3 {
		t.Fatalf("condition checked %d times, want 3", n.Load())
	}
}

// fakeTB records a Fatalf instead of ending the test.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	panic(f)
}

func TestForFailsAtTheDeadline(t *testing.T) {
	f := &fakeTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != f {
				panic(r)
			}
		}()
		testwait.For(f, 30*time.Millisecond, "never", func() bool { return false })
	}()
	if !f.failed {
		t.Fatal("For returned on a condition that never held")
	}
}

func TestPollSaysWhetherTheConditionHeld(t *testing.T) {
	var n atomic.Int32
	if !testwait.Poll(5*time.Second, func() bool { return n.Add(1) >= 2 }) {
		t.Fatal("Poll gave up on a condition that held at the second check")
	}
	start := time.Now()
	if testwait.Poll(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll says a condition that never held did")
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Fatalf("Poll gave up after %s, before its deadline", waited)
	}
}
