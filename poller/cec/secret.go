package cec

import (
	"fmt"
	"io"
	"log/slog"
)

const redacted = "[redacted]"

// Secret is a string that must never be printed, logged or serialised. Every
// formatting path yields "[redacted]"; call Reveal to get the value when it
// has to go on the wire.
type Secret string

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer so %#v does not leak either.
func (Secret) GoString() string { return redacted }

// Format covers every verb, including %s, %v, %q, %x and %d, which would
// otherwise print the underlying string.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalText lets configuration decoders fill a Secret from plain text.
func (s *Secret) UnmarshalText(b []byte) error {
	*s = Secret(b)
	return nil
}
