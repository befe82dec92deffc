package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/audit"
	"github.com/cecbridge/cecbridge/schemas"
)

const auditUsage = `usage: cecbridge audit verify [subject filter] [--since T | --seq N] [flags]
       cecbridge audit export --since T --until T [subject filter] [--format ndjson|csv] [flags]

verify walks the events stream and reports, per subject, seq holes and
repeats, broken prev_id links, duplicate events, forks (two messages with
one seq), detected windows that go backwards and undecodable messages. It
exits non-zero if it finds a defect. A subject whose earlier events are
older than the stream's first message is a retention cut, not a defect.

export writes the events stored in a time range, one per line (ndjson) or
as CSV, and a manifest: first and last stream seq, count, SHA-256 digest.

T is an RFC 3339 instant (2026-03-01T09:30:00Z) or a duration ago (24h).
A filter not starting with "cec." is relative to cec.evt ("acme.agent.>").

flags:
`

// errDefects makes the command exit non-zero after printing its report.
var errDefects = errors.New("audit: the history has defects")

// runAudit implements "cecbridge audit".
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" && args[0] != "export" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, auditUsage)
			return nil
		}
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("audit "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage); fs.PrintDefaults() }
	conn := addClientFlags(fs)
	stream := fs.String("stream", audit.DefaultStream, "events stream")
	since := fs.String("since", "", "start at this instant (RFC 3339) or this long ago (duration)")
	until := fs.String("until", "", "export: end at this instant or this long ago")
	seq := fs.Uint64("seq", 0, "verify: start at this stream sequence")
	asJSON := fs.Bool("json", false, "verify: print the report as JSON")
	format := fs.String("format", string(audit.FormatNDJSON), "export: ndjson or csv")
	out := fs.String("out", "", "export: write to this file (default standard output)")
	manifest := fs.String("manifest", "", "export: write the manifest here (default OUT.manifest.json, or standard error)")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	usageErr := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "cecbridge audit %s: %s\n", verb, fmt.Sprintf(format, a...))
		return errUsage
	}
	if len(pos) > 1 {
		return usageErr("at most one subject filter, got %q", pos)
	}
	now := time.Now()
	r := audit.Range{Stream: *stream, StartSeq: *seq}
	if len(pos) == 1 {
		r.Filter = pos[0]
		if !strings.HasPrefix(r.Filter, "cec.") {
			r.Filter = schemas.EventPrefix + "." + r.Filter
		}
	}
	if *since != "" {
		if r.StartTime, err = parseInstant(*since, now); err != nil {
			return usageErr("--since: %v", err)
		}
	}
	if *until != "" {
		if r.Until, err = parseInstant(*until, now); err != nil {
			return usageErr("--until: %v", err)
		}
	}
	switch verb {
	case "verify":
		if *until != "" || *out != "" || *manifest != "" || *format != string(audit.FormatNDJSON) {
			return usageErr("--until, --out, --manifest and --format are export flags")
		}
		if *since != "" && *seq != 0 {
			return usageErr("--since and --seq exclude each other")
		}
	case "export":
		if *since == "" || *until == "" {
			return usageErr("--since and --until are required")
		}
		if *seq != 0 || *asJSON {
			return usageErr("--seq and --json are verify flags")
		}
		if f := audit.Format(*format); f != audit.FormatNDJSON && f != audit.FormatCSV {
			return usageErr("--format must be ndjson or csv, got %q", *format)
		}
	}

	nc, err := conn.connect("cecbridge-audit")
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	bar := newProgressBar(stderr, verb)
	defer bar.done()
	if verb == "verify" {
		return auditVerify(ctx, js, r, *asJSON, bar, stdout)
	}
	return auditExport(ctx, js, r, audit.Format(*format), *out, *manifest, bar, stdout, stderr)
}

func auditVerify(ctx context.Context, js jetstream.JetStream, r audit.Range, asJSON bool, bar *progressBar, stdout io.Writer) error {
	rep, err := audit.Verify(ctx, js, r, bar.report)
	bar.done()
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep)
	}
	if !rep.OK() {
		return fmt.Errorf("%w: %d defects", errDefects, rep.Defects)
	}
	return nil
}

// printReport lists the findings grouped by subject, subjects in order.
func printReport(w io.Writer, rep *audit.Report) {
	fmt.Fprintf(w, "%s %s: %d events on %d subjects", rep.Stream, rep.Filter, rep.Events, rep.Subjects)
	if rep.Events > 0 {
		fmt.Fprintf(w, ", stream seq %d-%d", rep.FirstStreamSeq, rep.LastStreamSeq)
	}
	fmt.Fprintln(w)
	fs := slices.Clone(rep.Findings)
	slices.SortStableFunc(fs, func(a, b audit.Finding) int { return strings.Compare(a.Subject, b.Subject) })
	for i, f := range fs {
		if i == 0 || fs[i-1].Subject != f.Subject {
			fmt.Fprintln(w, f.Subject)
		}
		fmt.Fprintf(w, "  #%-8d %-13s %s\n", f.StreamSeq, f.Kind, f.Detail)
	}
	if rep.Omitted > 0 {
		fmt.Fprintf(w, "(%d more findings not listed)\n", rep.Omitted)
	}
	verdict := "whole"
	if !rep.OK() {
		verdict = "NOT WHOLE"
	}
	fmt.Fprintf(w, "%d defects, %d retention cuts: %s\n", rep.Defects, rep.RetentionCuts, verdict)
}

func auditExport(ctx context.Context, js jetstream.JetStream, r audit.Range, format audit.Format, out, manifest string, bar *progressBar, stdout, stderr io.Writer) (err error) {
	w := stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("audit: %w", cerr)
			}
		}()
		w = f
		if manifest == "" {
			manifest = out + ".manifest.json"
		}
	}
	man, err := audit.Export(ctx, js, r, format, w, bar.report)
	bar.done()
	if err != nil {
		return err
	}
	if manifest == "" {
		return writeJSON(stderr, man)
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, man); err != nil {
		return err
	}
	if err := os.WriteFile(manifest, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// writeJSON writes v indented, with subject wildcards (>) left readable.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// parseInstant reads an RFC 3339 instant or a duration before now.
func parseInstant(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 instant nor a duration ago", s)
	}
	return now.Add(-d), nil
}
