package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/cecbridge/cecbridge/configs"
)

// runCheckConfig validates a configuration file without connecting to
// anything; --print shows the effective configuration, secrets redacted.
func runCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	print := fs.Bool("print", false, "print the effective configuration (secrets redacted)")
	file, rest := splitFirstArg(args)
	if err := fs.Parse(rest); err != nil {
		return errUsage
	}
	if file == "" {
		file = fs.Arg(0)
	}
	if file == "" {
		fmt.Fprintln(stderr, "usage: cecbridge check-config FILE [--print]")
		return errUsage
	}
	cfg, err := configs.LoadFile(file)
	if err != nil {
		return err
	}
	if *print {
		return cfg.Print(stdout)
	}
	fmt.Fprintf(stdout, "%s: ok (%d tenant(s))\n", file, len(cfg.Tenants))
	return nil
}

// splitFirstArg lets a positional argument come before the flags
// ("check-config FILE --print"), which the flag package would otherwise stop at.
func splitFirstArg(args []string) (string, []string) {
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		return args[0], args[1:]
	}
	return "", args
}
