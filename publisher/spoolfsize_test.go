//go:build unix

package publisher

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/cecbridge/cecbridge/schemas"
	"github.com/cecbridge/cecbridge/schemas/schematest"
)

// fsizeChild says this process is the child that runs under a file size
// limit (RLIMIT_FSIZE is process-wide, so such tests re-run themselves in
// a child process).
const fsizeChild = "CECBRIDGE_TEST_FSIZE_CHILD"

// runInChild runs the named test in a child process with fsizeChild set,
// and fails if the child fails or does not print mark.
func runInChild(t *testing.T, name, mark string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), fsizeChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), mark) {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// setFileSizeLimit lowers RLIMIT_FSIZE to n bytes and returns a function
// that restores it (the test's cleanup restores it too). Go ignores SIGXFSZ, so a write past the limit writes
// what fits and then fails with EFBIG: a real torn write.
func setFileSizeLimit(t *testing.T, n uint64) func() {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	setRlim(&lim.Cur, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("cannot set RLIMIT_FSIZE: %v", err)
	}
	restore := func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(restore) // also when the test fails under the limit
	return restore
}

// setRlim sets a limit field, whose type differs between systems.
func setRlim[T int64 | uint64](field *T, n uint64) { *field = T(n) }

// The segment file reaches a real size limit part-way through a record:
// the write is torn, the spool cuts it off, takes the next record that
// still fits into the same segment, and reads back every accepted record.
// A directory that cannot take the start-up probe is reported at once.
func TestSpoolAtARealFileSizeLimit(t *testing.T) {
	if os.Getenv(fsizeChild) != "1" {
		runInChild(t, "TestSpoolAtARealFileSizeLimit", "--- PASS: TestSpoolAtARealFileSizeLimit")
		return
	}
	const limit = 16 << 10
	s, _ := testSpool(t)
	restore := setFileSizeLimit(t, limit)
	var accepted []schemas.Record
	var torn, afterTorn int
	for i := 0; torn < 2 && i < 1000; i++ {
		var size int64
		if len(s.segs) > 0 {
			size = s.segs[len(s.segs)-1].size
		}
		// Small records, then, with a little room left, one too big for
		// it: it is torn, and small ones still fit after it.
		pad := 1
		if torn == 0 && limit-size < 3000 {
			pad = 6000
		}
		rec := schematest.CallsRecord("acme", 101+i, 1, strings.Repeat("x", pad))
		schematest.ValidateEvent(t, rec.Body)
		err := s.append(rec)
		switch {
		case err == nil:
			accepted = append(accepted, rec)
			if torn > 0 {
				afterTorn++
			}
		case errors.Is(err, syscall.EFBIG):
			if size+recordSize(rec) > limit && size < limit {
				torn++
			}
			if got := fileSize(t, s, s.wseg); got != size {
				t.Fatalf("segment is %d bytes after a torn write, want %d", got, size)
			}
		default:
			t.Fatalf("append: %v", err)
		}
	}
	restore()
	if torn < 2 || afterTorn == 0 || len(s.segs) != 1 {
		t.Fatalf("torn %d, accepted after a torn write %d, segments %d: the limit did not tear writes as planned", torn, afterTorn, len(s.segs))
	}
	got, lost := readBack(t, s)
	if lost != 0 {
		t.Errorf("%d records lost", lost)
	}
	sameRecords(t, got, accepted)

	// The start-up probe writes 4 KiB: under a 1 KiB limit it fails, and
	// SpoolWritable says so until the limit is lifted.
	restore = setFileSizeLimit(t, 1<<10)
	p, err := New(nil, Config{SpoolDir: t.TempDir()})
	restore()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SpoolWritable(); err != nil {
		t.Fatalf("after the limit was lifted: %v", err)
	}
	restore = setFileSizeLimit(t, 1<<10)
	p, err = New(nil, Config{SpoolDir: t.TempDir()})
	if err != nil {
		restore()
		t.Fatal(err)
	}
	werr := p.SpoolWritable()
	restore()
	if !errors.Is(werr, ErrSpoolUnwritable) || !errors.Is(werr, syscall.EFBIG) {
		t.Fatalf("SpoolWritable under the limit = %v, want ErrSpoolUnwritable (EFBIG)", werr)
	}
}

// For the tests of package publisher_test.
var (
	RunInChild       = runInChild
	SetFileSizeLimit = setFileSizeLimit
)

// InFileSizeChild says whether this process is the child of runInChild.
func InFileSizeChild() bool { return os.Getenv(fsizeChild) == "1" }
