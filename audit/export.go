package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/schemas"
)

// Format is an export format.
type Format string

// The export formats: one JSON object per line, or CSV with a header row.
const (
	FormatNDJSON Format = "ndjson"
	FormatCSV    Format = "csv"
)

// CSVHeader names the columns of a CSV export. data is the event's data as
// JSON; the columns before it are copied out of the envelope and the data
// for a spreadsheet's sake.
var CSVHeader = []string{"stream_seq", "stored", "subject", "type", "id", "time", "op", "seq", "prev_id", "after_poll", "by_poll", "data"}

// Line is one line of an NDJSON export: the stored message's place in the
// stream and the event as stored, byte for byte when it is JSON (else
// Raw holds the body as a string).
type Line struct {
	StreamSeq uint64          `json:"stream_seq"`
	Stored    time.Time       `json:"stored"`
	Subject   string          `json:"subject"`
	Event     json.RawMessage `json:"event,omitempty"`
	Raw       string          `json:"raw,omitempty"`
}

// Manifest describes an export so that an auditor can tell it is complete
// and unaltered: which messages it holds and a digest of the bytes written.
type Manifest struct {
	Stream         string    `json:"stream"`
	Filter         string    `json:"filter"`
	Since          time.Time `json:"since,omitzero"`
	Until          time.Time `json:"until,omitzero"`
	Format         Format    `json:"format"`
	FirstStreamSeq uint64    `json:"first_stream_seq"`
	LastStreamSeq  uint64    `json:"last_stream_seq"`
	Count          uint64    `json:"count"`
	Bytes          int64     `json:"bytes"`
	// Digest is "sha256:" and the hex SHA-256 of the exported bytes.
	Digest  string    `json:"digest"`
	Created time.Time `json:"created"`
}

// Export writes the messages r selects to w in format and returns the
// manifest of what it wrote.
func Export(ctx context.Context, js jetstream.JetStream, r Range, format Format, w io.Writer, progress Progress) (*Manifest, error) {
	r, err := r.withDefaults()
	if err != nil {
		return nil, err
	}
	if format != FormatNDJSON && format != FormatCSV {
		return nil, fmt.Errorf("%w: format %q is not ndjson or csv", ErrBadRange, format)
	}
	sum := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(w, sum)}
	buf := bufio.NewWriterSize(cw, 64<<10)
	man := &Manifest{Stream: r.Stream, Filter: r.Filter, Since: r.StartTime, Until: r.Until, Format: format}
	var write func(m jetstream.Msg, md *jetstream.MsgMetadata) error
	switch format {
	case FormatNDJSON:
		enc := json.NewEncoder(buf)
		write = func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
			l := Line{StreamSeq: md.Sequence.Stream, Stored: md.Timestamp.UTC(), Subject: m.Subject()}
			if json.Valid(m.Data()) {
				l.Event = m.Data()
			} else {
				l.Raw = string(m.Data())
			}
			return enc.Encode(l)
		}
	case FormatCSV:
		cv := csv.NewWriter(buf)
		if err := cv.Write(CSVHeader); err != nil {
			return nil, fmt.Errorf("audit: export: %w", err)
		}
		write = func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
			if err := cv.Write(csvRow(md, m.Subject(), m.Data())); err != nil {
				return err
			}
			cv.Flush()
			return cv.Error()
		}
	}
	err = walk(ctx, js, r, progress, func(jetstream.StreamState) {}, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		if err := write(m, md); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		if man.Count == 0 {
			man.FirstStreamSeq = md.Sequence.Stream
		}
		man.LastStreamSeq = md.Sequence.Stream
		man.Count++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := buf.Flush(); err != nil {
		return nil, fmt.Errorf("audit: export: %w", err)
	}
	man.Bytes = cw.n
	man.Digest = digestString(sum)
	man.Created = time.Now().UTC()
	return man, nil
}

func digestString(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

// csvRow flattens one stored event; an undecodable body leaves the event
// columns empty and goes whole into data.
func csvRow(md *jetstream.MsgMetadata, subject string, body []byte) []string {
	row := []string{strconv.FormatUint(md.Sequence.Stream, 10), md.Timestamp.UTC().Format(time.RFC3339Nano), subject,
		"", "", "", "", "", "", "", "", string(body)}
	var ev schemas.Event
	if json.Unmarshal(body, &ev) != nil {
		return row
	}
	var d struct {
		Op       string            `json:"op"`
		Seq      uint64            `json:"seq"`
		PrevID   string            `json:"prev_id"`
		Detected *schemas.Detected `json:"detected"`
	}
	_ = json.Unmarshal(ev.Data, &d)
	row[3], row[4], row[5], row[6] = ev.Type, ev.ID, ev.Time.UTC().Format(time.RFC3339Nano), d.Op
	row[7], row[8], row[11] = strconv.FormatUint(d.Seq, 10), d.PrevID, string(ev.Data)
	if d.Detected != nil {
		if d.Detected.AfterPoll != nil {
			row[9] = d.Detected.AfterPoll.UTC().Format(time.RFC3339Nano)
		}
		row[10] = d.Detected.ByPoll.UTC().Format(time.RFC3339Nano)
	}
	return row
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
