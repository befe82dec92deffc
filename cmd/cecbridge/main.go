package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cecbridge/cecbridge/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var status exitStatus
	if errors.As(err, &status) {
		os.Exit(int(status))
	}
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "cecbridge:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage: cecbridge <command> [flags]

commands:
  dev            run everything in one process: embedded NATS with JetStream,
                 the simulated CEC and the bridge (no setup needed)
  run            run the bridge: --config FILE
  check-config   validate a configuration file: FILE [--print]
  probe          read-only checks against a live tenant: --config FILE
                 [--tenant T] [--json] [--capture DIR] [--slow]; exit status
                 0 works, 2 works with the suggested config, 1 cannot work
  lookup         ask the lookup service, e.g. "lookup agent-calls 1001"
  tail           print events as they happen: [subject filter]
  audit          verify a history is whole, or export a time range:
                 "audit verify [filter]", "audit export --since T --until T"
  health         probe a running bridge: --url http://127.0.0.1:9090/readyz
  version        print the version
`

// run is the whole program behind main, so tests can start it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return runDev(ctx, rest, stdout, stderr)
	case "run":
		return runBridgeCmd(ctx, rest, stdout, stderr)
	case "check-config":
		return runCheckConfig(rest, stdout, stderr)
	case "probe":
		return runProbe(ctx, rest, stdout, stderr)
	case "lookup":
		return runLookup(ctx, rest, stdout, stderr)
	case "tail":
		return runTail(ctx, rest, stdout, stderr)
	case "audit":
		return runAudit(ctx, rest, stdout, stderr)
	case "health":
		return runHealth(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "cecbridge", app.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "cecbridge: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}
