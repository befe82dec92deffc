package publisher

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cecbridge/cecbridge/schemas"
)

// The spool is a sequence of append-only segment files. A record is
//
//	u32 length of the payload | u32 CRC-32C of the payload |
//	payload: u16 len | subject | u16 len | id | u64 seq | body
//
// Records are read back in the order they were written; a segment is
// removed once it has been read to its end, and everything is removed when
// the spool runs empty, so the files never outgrow the backlog.
//
// A record counts (and Emit accepts it) only once all of its bytes are
// written. A write that fails part-way (a full disk) is cut off again, so
// the segment ends with its last complete record; if even the cut fails,
// the segment is closed and the reader stops at the last complete record.
// The reader knows how many complete records and bytes each segment holds,
// so a torn tail is never read as a record. A record whose bytes changed on
// disk fails its checksum and is skipped, counted and logged; the records
// after it are still read.
const (
	segPrefix   = "spool-"
	segSuffix   = ".log"
	segMaxBytes = 16 << 20
	recFrame    = 4 + 4     // length and checksum
	recHeader   = 2 + 2 + 8 // inside the payload: two lengths and the seq
)

var (
	errSpoolFull = errors.New("publisher: spool full")
	// errRecordCorrupt is a record whose checksum or layout is wrong; the
	// reader skips it.
	errRecordCorrupt = errors.New("publisher: spool: corrupt record")
	crcTable         = crc32.MakeTable(crc32.Castagnoli)
)

// segment is one spool file: how many complete records it holds and how
// many bytes they take. Anything past size is a torn write.
type segment struct {
	n       int
	records int
	size    int64
}

type spool struct {
	dir   string
	max   int64
	log   *slog.Logger
	bytes int64 // encoded bytes not yet read back
	count int   // records not yet read back

	segs []segment // oldest first; the last one is written while w is open
	w    *os.File
	wseg int // number of the newest segment file
	// write writes a whole record to the open segment; a test replaces it
	// to fail part-way, as a full disk does.
	write func(f *os.File, b []byte) (int, error)
	// writeErr is the last append's failure, or the start-up probe's;
	// nil once a write succeeds again.
	writeErr error

	r     *os.File
	rbuf  *bufio.Reader
	rread int   // records read from segs[0]
	roff  int64 // bytes read from segs[0]
	buf   []byte
}

func segName(dir string, n int) string {
	return filepath.Join(dir, fmt.Sprintf("%s%012d%s", segPrefix, n, segSuffix))
}

func writeFile(f *os.File, b []byte) (int, error) { return f.Write(b) }

// openSpool opens dir, counting the records that an earlier run left there,
// and checks that the directory takes a write (the result is writeErr).
func openSpool(dir string, max int64, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("publisher: spool: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("publisher: spool: %w", err)
	}
	s := &spool{dir: dir, max: max, log: log, write: writeFile}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix))
		if err != nil {
			continue
		}
		s.segs = append(s.segs, segment{n: n})
	}
	slices.SortFunc(s.segs, func(a, b segment) int { return a.n - b.n })
	for i := range s.segs {
		if err := s.recover(&s.segs[i]); err != nil {
			return nil, err
		}
		s.wseg = s.segs[i].n
	}
	if s.writeErr = probeDir(dir); s.writeErr != nil {
		log.Error("spool directory not writable; records past the memory buffer will be refused", "dir", dir, "err", s.writeErr)
	}
	return s, nil
}

// recover counts the complete records of a segment left by an earlier run,
// up to a torn record at its end (a crash in the middle of an append).
func (s *spool) recover(seg *segment) error {
	f, err := os.Open(segName(s.dir, seg.n))
	if err != nil {
		return fmt.Errorf("publisher: spool: %w", err)
	}
	defer func() { _ = f.Close() }() // read only
	br := bufio.NewReader(f)
	var frame [recFrame]byte
	for {
		if _, err := io.ReadFull(br, frame[:]); err != nil {
			break
		}
		l := int64(binary.BigEndian.Uint32(frame[:4]))
		if n, err := br.Discard(int(l)); err != nil || int64(n) != l {
			break
		}
		seg.records++
		seg.size += recFrame + l
	}
	s.count += seg.records
	s.bytes += seg.size
	return nil
}

func recordSize(rec schemas.Record) int64 {
	return int64(recFrame + recHeader + len(rec.Subject) + len(rec.ID) + len(rec.Body))
}

// append writes rec at the end of the newest segment. On error nothing of
// rec stays readable and the spool is as it was.
func (s *spool) append(rec schemas.Record) error {
	size := recordSize(rec)
	if s.bytes+size > s.max {
		return errSpoolFull
	}
	if len(rec.Subject) > 0xffff || len(rec.ID) > 0xffff {
		return fmt.Errorf("publisher: spool: record %s too large", rec.ID)
	}
	if s.w == nil || s.segs[len(s.segs)-1].size >= segMaxBytes {
		if err := s.roll(); err != nil {
			s.writeErr = err
			return err
		}
	}
	b := binary.BigEndian.AppendUint32(s.buf[:0], uint32(size-recFrame))
	b = binary.BigEndian.AppendUint32(b, 0) // checksum, below
	b = binary.BigEndian.AppendUint16(b, uint16(len(rec.Subject)))
	b = append(b, rec.Subject...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rec.ID)))
	b = append(b, rec.ID...)
	b = binary.BigEndian.AppendUint64(b, rec.Seq)
	b = append(b, rec.Body...)
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(b[recFrame:], crcTable))
	s.buf = b
	seg := &s.segs[len(s.segs)-1]
	n, err := s.write(s.w, b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.writeErr = fmt.Errorf("publisher: spool: %w", err)
		// Cut the torn record off; with O_APPEND the next record then
		// follows the last complete one. If the cut fails, close the
		// segment: the reader stops at its last complete record.
		if terr := s.w.Truncate(seg.size); terr != nil {
			s.log.Error("spool: cannot cut a torn write; closing the segment", "segment", seg.n, "err", terr)
			_ = s.w.Close() // the segment takes no more writes either way
			s.w = nil
		}
		return s.writeErr
	}
	s.writeErr = nil
	seg.records++
	seg.size += size
	s.bytes += size
	s.count++
	return nil
}

func (s *spool) roll() error {
	if s.w != nil {
		if err := s.w.Close(); err != nil {
			s.w = nil
			return fmt.Errorf("publisher: spool: %w", err)
		}
	}
	s.wseg++
	f, err := os.OpenFile(segName(s.dir, s.wseg), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		s.w = nil
		return fmt.Errorf("publisher: spool: %w", err)
	}
	s.w = f
	s.segs = append(s.segs, segment{n: s.wseg})
	return nil
}

// next reads the oldest record back. lost counts the records before it
// that could not be read (corrupt, or an unreadable segment): they are
// gone, and logged. ok is false when no record is left.
func (s *spool) next() (rec schemas.Record, lost int, ok bool) {
	for s.count > 0 {
		if len(s.segs) == 0 {
			// Cannot happen: count and segments disagree. Say so rather
			// than spin.
			s.log.Error("spool: records missing", "records", s.count)
			lost += s.count
			s.count, s.bytes = 0, 0
			break
		}
		seg := s.segs[0]
		if s.rread == seg.records {
			s.closeHead()
			continue
		}
		rec, size, err := s.readRecord(seg)
		switch {
		case err == nil:
			s.count--
			s.bytes -= size
			if s.count == 0 {
				s.reset()
			}
			return rec, lost, true
		case errors.Is(err, errRecordCorrupt):
			// Its length was sound, so the next record is found.
			s.log.Error("spool: corrupt record skipped", "segment", seg.n, "err", err)
			s.count--
			s.bytes -= size
			lost++
		default:
			// Nothing after this point of the segment can be trusted.
			left := seg.records - s.rread
			s.log.Error("spool: segment unreadable, its remaining records skipped",
				"segment", seg.n, "records", left, "err", err)
			lost += left
			s.count -= left
			s.bytes -= seg.size - s.roff
			s.rread = seg.records
		}
	}
	if len(s.segs) > 0 {
		s.reset() // only lost records were left
	}
	return schemas.Record{}, lost, false
}

// readRecord reads the next record of seg (which is s.segs[0]) and says
// how many bytes it took. A record whose bytes are wrong but whose length
// is sound is consumed and reported as errRecordCorrupt; after any other
// error the rest of the segment cannot be read.
func (s *spool) readRecord(seg segment) (schemas.Record, int64, error) {
	if s.r == nil {
		f, err := os.Open(segName(s.dir, seg.n))
		if err != nil {
			return schemas.Record{}, 0, fmt.Errorf("publisher: spool: %w", err)
		}
		s.r, s.rbuf = f, bufio.NewReaderSize(f, 64<<10)
	}
	var frame [recFrame]byte
	if _, err := io.ReadFull(s.rbuf, frame[:]); err != nil {
		return schemas.Record{}, 0, fmt.Errorf("publisher: spool: segment shorter than written: %w", err)
	}
	l := int64(binary.BigEndian.Uint32(frame[:4]))
	if l < recHeader || s.roff+recFrame+l > seg.size {
		return schemas.Record{}, 0, fmt.Errorf("publisher: spool: record length %d out of bounds", l)
	}
	b := make([]byte, l)
	if _, err := io.ReadFull(s.rbuf, b); err != nil {
		return schemas.Record{}, 0, fmt.Errorf("publisher: spool: segment shorter than written: %w", err)
	}
	size := recFrame + l
	s.roff += size
	s.rread++
	if crc32.Checksum(b, crcTable) != binary.BigEndian.Uint32(frame[4:]) {
		return schemas.Record{}, size, fmt.Errorf("%w: checksum mismatch", errRecordCorrupt)
	}
	rec, err := decodeRecord(b)
	return rec, size, err
}

// closeHead removes the oldest segment once it has been read to its end.
// Its records are all read back, so closing and removing it are best
// effort: a file left behind is discarded at the next start.
func (s *spool) closeHead() {
	if s.r != nil {
		_ = s.r.Close()
	}
	if s.w != nil && len(s.segs) == 1 {
		// The segment still being written: appends go to a new one.
		_ = s.w.Close()
		s.w = nil
	}
	_ = os.Remove(segName(s.dir, s.segs[0].n))
	s.r, s.rbuf, s.rread, s.roff = nil, nil, 0, 0
	s.segs = s.segs[1:]
}

func decodeRecord(b []byte) (schemas.Record, error) {
	var rec schemas.Record
	take16 := func() (string, bool) {
		if len(b) < 2 {
			return "", false
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return "", false
		}
		v := string(b[2 : 2+n])
		b = b[2+n:]
		return v, true
	}
	var ok bool
	if rec.Subject, ok = take16(); !ok {
		return rec, errRecordCorrupt
	}
	if rec.ID, ok = take16(); !ok {
		return rec, errRecordCorrupt
	}
	if len(b) < 8 {
		return rec, errRecordCorrupt
	}
	rec.Seq = binary.BigEndian.Uint64(b)
	rec.Body = b[8:]
	return rec, nil
}

// reset removes every segment once everything has been read back (best
// effort, as closeHead).
func (s *spool) reset() {
	if s.r != nil {
		_ = s.r.Close()
	}
	if s.w != nil {
		_ = s.w.Close()
	}
	for _, seg := range s.segs {
		_ = os.Remove(segName(s.dir, seg.n))
	}
	s.r, s.rbuf, s.w, s.segs, s.rread, s.roff = nil, nil, nil, nil, 0, 0
}

// drop discards the unread records (those of an earlier run), returning
// how many.
func (s *spool) drop() int {
	n := s.count
	s.count, s.bytes = 0, 0
	s.reset()
	return n
}
