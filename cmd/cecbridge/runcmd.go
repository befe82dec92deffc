package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/cecbridge/cecbridge/configs"
	"github.com/cecbridge/cecbridge/internal/app"
)

// runBridgeCmd is "cecbridge run --config FILE".
func runBridgeCmd(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *file == "" {
		fmt.Fprintln(stderr, "usage: cecbridge run --config FILE")
		return errUsage
	}
	cfg, err := configs.LoadFile(*file)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	log.Info("starting cecbridge", "version", app.Version, "tenants", len(cfg.Tenants), "nats", configs.RedactURLs(cfg.NATS.URLs))
	return app.Run(ctx, cfg, log)
}
