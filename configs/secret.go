package configs

import (
	"fmt"
	"log/slog"
)

// Redacted is what a Secret prints as.
const Redacted = "[redacted]"

// Secret is a credential. It prints, formats, logs and marshals as
// [Redacted]; Reveal returns the value for the one place that needs it.
type Secret string

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer, so %#v does not leak either.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// Format makes every verb print the placeholder.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler (JSON and YAML use it).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
