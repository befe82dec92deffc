package schemas_test

import (
	"testing"

	"github.com/cecbridge/cecbridge/schemas"
)

func TestOriginSeq(t *testing.T) {
	for h, want := range map[string]uint64{
		"CEC_EVENTS 42 > >": 42, "CEC_EVENTS 7": 7, "": 0, "CEC_EVENTS": 0, "CEC_EVENTS x > >": 0,
	} {
		if got := schemas.OriginSeq(h); got != want {
			t.Errorf("OriginSeq(%q) = %d, want %d", h, got, want)
		}
	}
}
