package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.Server, "server", nats.DefaultURL, "NATS server URL")
	flag.StringVar(&cfg.Stream, "stream", "CEC_EVENTS", "events stream")
	flag.StringVar(&cfg.Durable, "durable", "audit-log", "durable consumer name")
	flag.StringVar(&cfg.Filter, "filter", "cec.evt.>", "subjects to keep")
	flag.StringVar(&cfg.Log, "log", "audit.ndjson", "the audit log, appended to")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
		fmt.Fprintln(os.Stderr, "audit-consumer:", err)
		os.Exit(1)
	}
}

type config struct {
	Server, Stream, Durable, Filter, Log string
}

// line is one line of the audit log.
type line struct {
	StreamSeq uint64          `json:"stream_seq"`
	Subject   string          `json:"subject"`
	ID        string          `json:"id"`
	Seq       uint64          `json:"seq"`
	Event     json.RawMessage `json:"event"`
}

// last is what the log holds of one subject: its last event.
type last struct {
	seq uint64
	id  string
}

// event is the part of a cecbridge event the consumer checks: every event,
// entity or bridge, carries seq and prev_id in its data.
type event struct {
	ID   string `json:"id"`
	Data struct {
		Seq    uint64 `json:"seq"`
		PrevID string `json:"prev_id"`
	} `json:"data"`
}

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	seen, err := readLog(cfg.Log)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(cfg.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // every line is synced before its ack

	nc, err := nats.Connect(cfg.Server, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		FilterSubject: cfg.Filter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
	})
	if err != nil {
		return err
	}
	log.Info("keeping the audit log", "log", cfg.Log, "subjects", len(seen))
	// Consume calls the handler for one message at a time, so seen needs
	// no lock (nothing else touches it from here on).
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := keep(f, seen, m, log); err != nil {
			log.Error("event not written; it will come again", "subject", m.Subject(), "err", err)
			_ = m.Nak()
			return
		}
		if err := m.Ack(); err != nil {
			log.Warn("ack failed; the event will come again and be skipped", "err", err)
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		log.Warn("consumer", "err", err)
	}))
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

// keep writes one event to the log unless it is there already, checking
// its place in its subject's history.
func keep(f *os.File, seen map[string]last, m jetstream.Msg, log *slog.Logger) error {
	md, err := m.Metadata()
	if err != nil {
		return err
	}
	var ev event
	if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.Data.Seq == 0 {
		return fmt.Errorf("stream seq %d is not a cecbridge event: %w", md.Sequence.Stream, err)
	}
	subject, seq := m.Subject(), ev.Data.Seq
	prev, known := seen[subject]
	switch {
	case known && seq <= prev.seq:
		return nil // in the log already: delivered again after a restart
	case known && (seq != prev.seq+1 || ev.Data.PrevID != prev.id):
		log.Warn("history broken", "subject", subject, "seq", seq, "after_seq", prev.seq, "prev_id", ev.Data.PrevID, "want_prev_id", prev.id)
	case !known && seq != 1:
		log.Info("subject starts past seq 1: its earlier events aged out", "subject", subject, "seq", seq)
	}
	b, err := json.Marshal(line{StreamSeq: md.Sequence.Stream, Subject: subject, ID: ev.ID, Seq: seq, Event: m.Data()})
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return err
	}
	// On disk before the ack: a crash between the two repeats the event,
	// which the next run skips, rather than losing it.
	if err := f.Sync(); err != nil {
		return err
	}
	seen[subject] = last{seq: seq, id: ev.ID}
	return nil
}

// readLog rebuilds the last event of every subject from an existing log.
func readLog(path string) (map[string]last, error) {
	seen := map[string]last{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return seen, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only
	r := bufio.NewReader(f)
	var whole int64 // bytes up to the last complete line
	for {
		b, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(b) > 0 {
				// A last line without its newline was cut by a crash: the
				// event was not acknowledged and will come again.
				return seen, os.Truncate(path, whole)
			}
			return seen, nil
		}
		if err != nil {
			return nil, err
		}
		whole += int64(len(b))
		var l line
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if l.Seq > seen[l.Subject].seq {
			seen[l.Subject] = last{seq: l.Seq, id: l.ID}
		}
	}
}
