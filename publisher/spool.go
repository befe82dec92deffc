package publisher

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cecbridge/cecbridge/schemas"
)

// The spool is a sequence of append-only segment files. A record is
//
//	u32 length of the rest | u16 len | subject | u16 len | id | u64 seq | body
//
// Records are read back in the order they were written; a segment is
// removed once it has been read to its end, and everything is removed when
// the spool runs empty, so the files never outgrow the backlog.
const (
	segPrefix   = "spool-"
	segSuffix   = ".log"
	segMaxBytes = 16 << 20
	recHeader   = 4 + 2 + 2 + 8
)

var errSpoolFull = errors.New("publisher: spool full")

type spool struct {
	dir   string
	max   int64
	bytes int64 // encoded bytes not yet read back
	count int   // records not yet read back

	segs  []int // segment numbers, oldest first
	w     *os.File
	wseg  int
	wsize int64
	r     *os.File
	rbuf  *bufio.Reader
	buf   []byte
}

func segName(dir string, n int) string {
	return filepath.Join(dir, fmt.Sprintf("%s%012d%s", segPrefix, n, segSuffix))
}

// openSpool opens dir, counting the records that an earlier run left there
// so that they are published before anything new.
func openSpool(dir string, max int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("publisher: spool: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("publisher: spool: %w", err)
	}
	s := &spool{dir: dir, max: max}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix))
		if err != nil {
			continue
		}
		s.segs = append(s.segs, n)
	}
	slices.Sort(s.segs)
	for _, n := range s.segs {
		if err := s.recover(n); err != nil {
			return nil, err
		}
		s.wseg = n
	}
	return s, nil
}

// recover counts the complete records of one segment and cuts off a torn
// record at its end (a crash in the middle of an append).
func (s *spool) recover(n int) error {
	f, err := os.OpenFile(segName(s.dir, n), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("publisher: spool: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var good int64
	var lenb [4]byte
	for {
		if _, err := io.ReadFull(br, lenb[:]); err != nil {
			break
		}
		l := int64(binary.BigEndian.Uint32(lenb[:]))
		if _, err := br.Discard(int(l)); err != nil {
			break
		}
		good += 4 + l
		s.count++
		s.bytes += 4 + l
	}
	if err := f.Truncate(good); err != nil {
		return fmt.Errorf("publisher: spool: %w", err)
	}
	return nil
}

func recordSize(rec schemas.Record) int64 {
	return int64(recHeader + len(rec.Subject) + len(rec.ID) + len(rec.Body))
}

func (s *spool) append(rec schemas.Record) error {
	size := recordSize(rec)
	if s.bytes+size > s.max {
		return errSpoolFull
	}
	if len(rec.Subject) > 0xffff || len(rec.ID) > 0xffff {
		return fmt.Errorf("publisher: spool: record %s too large", rec.ID)
	}
	if s.w == nil || s.wsize >= segMaxBytes {
		if err := s.roll(); err != nil {
			return err
		}
	}
	b := s.buf[:0]
	b = binary.BigEndian.AppendUint32(b, uint32(size-4))
	b = binary.BigEndian.AppendUint16(b, uint16(len(rec.Subject)))
	b = append(b, rec.Subject...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rec.ID)))
	b = append(b, rec.ID...)
	b = binary.BigEndian.AppendUint64(b, rec.Seq)
	b = append(b, rec.Body...)
	s.buf = b
	if _, err := s.w.Write(b); err != nil {
		// A short write leaves a torn record; start a fresh segment so the
		// reader never sees it... the torn one is cut at the next open.
		s.w.Close()
		s.w = nil
		return fmt.Errorf("publisher: spool: %w", err)
	}
	s.wsize += size
	s.bytes += size
	s.count++
	return nil
}

func (s *spool) roll() error {
	if s.w != nil {
		if err := s.w.Close(); err != nil {
			return fmt.Errorf("publisher: spool: %w", err)
		}
	}
	s.wseg++
	f, err := os.OpenFile(segName(s.dir, s.wseg), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		s.w = nil
		return fmt.Errorf("publisher: spool: %w", err)
	}
	s.w, s.wsize = f, 0
	s.segs = append(s.segs, s.wseg)
	return nil
}

// next reads the oldest record. Call only with count > 0.
func (s *spool) next() (schemas.Record, error) {
	for {
		if s.r == nil {
			if len(s.segs) == 0 {
				return schemas.Record{}, fmt.Errorf("publisher: spool: %d records missing", s.count)
			}
			f, err := os.Open(segName(s.dir, s.segs[0]))
			if err != nil {
				return schemas.Record{}, fmt.Errorf("publisher: spool: %w", err)
			}
			s.r, s.rbuf = f, bufio.NewReaderSize(f, 64<<10)
		}
		var lenb [4]byte
		_, err := io.ReadFull(s.rbuf, lenb[:])
		if errors.Is(err, io.EOF) && !(s.w != nil && s.segs[0] == s.wseg) {
			// This segment is read to its end and no longer written.
			s.r.Close()
			os.Remove(segName(s.dir, s.segs[0]))
			s.r, s.rbuf, s.segs = nil, nil, s.segs[1:]
			continue
		}
		if err != nil {
			return schemas.Record{}, fmt.Errorf("publisher: spool: %w", err)
		}
		l := binary.BigEndian.Uint32(lenb[:])
		b := make([]byte, l)
		if _, err := io.ReadFull(s.rbuf, b); err != nil {
			return schemas.Record{}, fmt.Errorf("publisher: spool: %w", err)
		}
		rec, err := decodeRecord(b)
		if err != nil {
			return rec, err
		}
		s.count--
		s.bytes -= int64(l) + 4
		if s.count == 0 {
			s.reset()
		}
		return rec, nil
	}
}

func decodeRecord(b []byte) (schemas.Record, error) {
	bad := fmt.Errorf("publisher: spool: corrupt record")
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
		return rec, bad
	}
	if rec.ID, ok = take16(); !ok {
		return rec, bad
	}
	if len(b) < 8 {
		return rec, bad
	}
	rec.Seq = binary.BigEndian.Uint64(b)
	rec.Body = b[8:]
	return rec, nil
}

// reset removes every segment once everything has been read back.
func (s *spool) reset() {
	if s.r != nil {
		s.r.Close()
	}
	if s.w != nil {
		s.w.Close()
	}
	for _, n := range s.segs {
		os.Remove(segName(s.dir, n))
	}
	s.r, s.rbuf, s.w, s.segs, s.wsize = nil, nil, nil, nil, 0
}

// drop discards the unread records (after a read error), returning how many.
func (s *spool) drop() int {
	n := s.count
	s.count, s.bytes = 0, 0
	s.reset()
	return n
}
