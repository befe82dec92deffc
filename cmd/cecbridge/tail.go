package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/schemas"
)

const tailUsage = `usage: cecbridge tail [subject filter] [flags]

Prints events one line each: time, stream seq, type, key, op, before -> after.
The filter defaults to every event (cec.evt.>); a filter not starting with
"cec." is taken relative to cec.evt (e.g. "dev.agent.*.calls").
Without --since or --seq only new events are printed.

flags:
`

// runTail implements "cecbridge tail".
func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tailUsage); fs.PrintDefaults() }
	server := fs.String("server", defaultServer, "NATS server URL")
	stream := fs.String("stream", schemas.EventsStream, "events stream")
	since := fs.Duration("since", 0, "replay events from this long ago, then follow")
	seq := fs.Uint64("seq", 0, "replay events from this stream sequence, then follow")
	count := fs.Int("count", 0, "exit after printing this many events (0: run until interrupted)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if len(pos) > 1 || *since != 0 && *seq != 0 || *since < 0 || *count < 0 {
		fs.Usage()
		return errUsage
	}
	filter := schemas.AllEvents
	if len(pos) == 1 {
		filter = pos[0]
		if !strings.HasPrefix(filter, "cec.") {
			filter = schemas.EventPrefix + "." + filter
		}
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverNewPolicy}
	switch {
	case *since > 0:
		start := time.Now().Add(-*since)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	case *seq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, *seq
	}

	nc, err := nats.Connect(*server, nats.Name("cecbridge-tail"), nats.Timeout(5*time.Second), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("tail: connect to %s: %w", configs.RedactURL(*server), configs.RedactURLError(err, *server))
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	cons, err := js.OrderedConsumer(ctx, *stream, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted before the first event: not an error
		}
		return fmt.Errorf("tail: consume %s: %w", *stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("tail: consume %s: %w", *stream, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for n := 0; *count == 0 || n < *count; n++ {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tail: %w", err)
		}
		var streamSeq uint64
		if md, err := m.Metadata(); err == nil {
			streamSeq = md.Sequence.Stream
		}
		if _, err := fmt.Fprintln(stdout, formatEvent(streamSeq, m.Subject(), m.Data())); err != nil {
			return fmt.Errorf("tail: %w", err)
		}
	}
	return nil
}

// formatEvent renders one event as a line. Undecodable events still get a
// line, so nothing on the stream is silently hidden.
func formatEvent(streamSeq uint64, subject string, data []byte) string {
	key := strings.TrimPrefix(subject, schemas.EventPrefix+".")
	var ev schemas.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return fmt.Sprintf("%-24s #%-6d %-16s %s  (undecodable, %d bytes)", "-", streamSeq, "?", key, len(data))
	}
	typ := strings.TrimSuffix(strings.TrimPrefix(ev.Type, "io.cecbridge."), ".v1")
	head := fmt.Sprintf("%-24s #%-6d %-16s %s", ev.Time.UTC().Format("2006-01-02T15:04:05.000Z"), streamSeq, typ, key)
	var rest string
	switch ev.Type {
	case schemas.TypeAgentCalls:
		rest = changeLine[schemas.AgentCalls](ev.Data, func(c *schemas.AgentCalls) string {
			return "[" + strings.Join(c.CallIDs, ",") + "]"
		})
	case schemas.TypeAgentSoftphone:
		rest = changeLine[schemas.AgentSoftphone](ev.Data, func(s *schemas.AgentSoftphone) string {
			return fmt.Sprintf("sip %s@%s:%d", orDash(s.SIPAccount), orDash(s.SIPServerIP), s.SIPServerPort)
		})
	case schemas.TypePhoneState:
		rest = changeLine[schemas.PhoneState](ev.Data, func(p *schemas.PhoneState) string {
			return fmt.Sprintf("%s(%d)", p.Status, p.StatusCode)
		})
	case schemas.TypeBridgeVisibility:
		var v schemas.Visibility
		if json.Unmarshal(ev.Data, &v) != nil {
			return head + "  (bad data)"
		}
		rest = fmt.Sprintf("%s %s %d agents %s", v.State, v.Scope, v.Count, short(v.Agents))
		if v.Reason != "" {
			rest += " (" + short(v.Reason) + ")"
		}
	case schemas.TypeBridgeStatesVisibility:
		var sv schemas.StatesVisibility
		if json.Unmarshal(ev.Data, &sv) != nil {
			return head + "  (bad data)"
		}
		rest = "every agent's state visible"
		if sv.Count > 0 {
			rest = fmt.Sprintf("%d agents' state not visible %s (%s)", sv.Count, short(sv.NotVisible), short(sv.Reason))
		}
	case schemas.TypeBridgeHeartbeat:
		var h schemas.Heartbeat
		if json.Unmarshal(ev.Data, &h) != nil {
			return head + "  (bad data)"
		}
		rest = fmt.Sprintf("%s agents %d/%d visible, phones %d, events %d", h.Instance, h.AgentsVisible, h.AgentsTracked, h.PhonesTracked, h.EventsEmitted)
	default:
		rest = fmt.Sprintf("(%d bytes)", len(ev.Data))
	}
	return head + "  " + rest
}

func changeLine[T any](data json.RawMessage, show func(*T) string) string {
	var c schemas.Change[T]
	if json.Unmarshal(data, &c) != nil {
		return "(bad data)"
	}
	side := func(v *T) string {
		if v == nil {
			return "∅"
		}
		return short(show(v))
	}
	return fmt.Sprintf("%-8s %s -> %s", c.Op, side(c.Before), side(c.After))
}

// short keeps a line readable when a value is long (many call IDs).
func short(s string) string {
	const limit = 60
	if len(s) <= limit {
		return s
	}
	return s[:limit-3] + "..."
}
