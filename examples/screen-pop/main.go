package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cecbridge/cecbridge/schemas"
)

func main() {
	server := flag.String("server", nats.DefaultURL, "NATS server URL")
	tenant := flag.String("tenant", "dev", "tenant")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *server, *tenant, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "screen-pop:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, server, tenant string, out io.Writer) error {
	nc, err := nats.Connect(server, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()

	// The call IDs each agent held in the last event seen. The handler of
	// one subscription runs on one goroutine, so the map needs no lock.
	calls := map[int][]string{}
	subject := schemas.EventPrefix + "." + tenant + ".agent.*.calls"
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var ev schemas.Event
		var change schemas.Change[schemas.AgentCalls]
		if json.Unmarshal(m.Data, &ev) != nil || json.Unmarshal(ev.Data, &change) != nil {
			return // not an event of this contract; nothing to pop
		}
		var now []string
		if change.After != nil {
			now = change.After.CallIDs
		}
		agent := change.Key.WorkNo
		for _, id := range now {
			if !slices.Contains(calls[agent], id) {
				fmt.Fprintf(out, "screen-pop: agent %d call %s (seen by %s)\n", agent, id, change.Detected.ByPoll.Format("15:04:05.000"))
			}
		}
		calls[agent] = now
	})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	// Once the server has the subscription, every later event reaches us.
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		return err
	}
	fmt.Fprintf(out, "listening on %s\n", subject)
	<-ctx.Done()
	return nil
}
