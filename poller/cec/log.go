package cec

import "log/slog"

const slogWarn = slog.LevelWarn

// errAttr logs an error by its text, which this package builds from scrubbed
// parts only.
func errAttr(err error) slog.Attr { return slog.String("err", err.Error()) }
